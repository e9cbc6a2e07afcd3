//! Function names for kernel addresses, from the kernel ELF's symbol table.

use object::{Object, ObjectSymbol, SymbolKind};

/// The kernel's function symbols, sorted by address.
#[derive(Debug, Clone)]
pub struct Symbols {
    functions: Vec<(u64, u64, String)>,
}

impl Symbols {
    /// Reads the function symbols of the kernel ELF `kernel`.
    pub fn read(kernel: &[u8]) -> Option<Self> {
        let file = object::File::parse(kernel).ok()?;
        let mut functions: Vec<(u64, u64, String)> = file
            .symbols()
            .filter(|symbol| symbol.kind() == SymbolKind::Text && symbol.address() != 0)
            .filter_map(|symbol| {
                let name = symbol.name().ok()?;
                Some((symbol.address(), symbol.size(), rustc_demangle::demangle(name).to_string()))
            })
            .collect();
        functions.sort_by_key(|(address, ..)| *address);
        Some(Symbols { functions })
    }

    /// `function+0xoffset` for `address`, if a function contains it.
    pub fn describe(&self, address: u64) -> Option<String> {
        let index = self.functions.partition_point(|(start, ..)| *start <= address).checked_sub(1)?;
        let (start, size, name) = &self.functions[index];
        let offset = address - start;
        (*size == 0 || offset < *size).then(|| format!("{name}+{offset:#x}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_addresses_in_the_built_in_kernel() {
        let symbols = Symbols::read(crate::kernel::ELF).unwrap();
        let (address, ..) = symbols
            .functions
            .iter()
            .find(|(_, _, name)| name.contains("rosv_platform::power::power_off"))
            .cloned()
            .expect("the kernel has a power_off function");
        let described = symbols.describe(address + 1).unwrap();
        assert!(described.starts_with("rosv_platform::power::power_off"), "{described}");
        assert!(described.ends_with("+0x1"));
        assert_eq!(symbols.describe(0x10), None);
    }
}
