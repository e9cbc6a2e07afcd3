//! Reading and writing system call arguments in application memory.

use alloc::string::String;
use alloc::vec::Vec;

use crate::errno::Errno;
use crate::machine::Machine;
use crate::memory::PAGE_SIZE;

/// The longest path a system call accepts, terminating NUL included.
pub const PATH_MAX: usize = 4096;

/// Application memory as seen by a system call.
#[derive(Clone, Copy)]
pub struct User<'a> {
    machine: &'a dyn Machine,
}

impl core::fmt::Debug for User<'_> {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.write_str("User")
    }
}

impl<'a> User<'a> {
    /// Application memory through `machine`.
    pub fn new(machine: &'a dyn Machine) -> Self {
        User { machine }
    }

    /// Copies `length` bytes from `address`. Callers bound `length` by
    /// Linux's limits first; a buffer that still cannot be had is `ENOMEM`,
    /// never a panic.
    pub fn read_bytes(&self, address: u64, length: usize) -> Result<Vec<u8>, Errno> {
        let mut buffer = Vec::new();
        buffer.try_reserve_exact(length).map_err(|_| Errno::ENOMEM)?;
        buffer.resize(length, 0);
        self.read_into(address, &mut buffer)?;
        Ok(buffer)
    }

    /// Fills `buffer` from `address`.
    pub fn read_into(&self, address: u64, buffer: &mut [u8]) -> Result<(), Errno> {
        self.machine.read_memory(address, buffer).map_err(|_| Errno::EFAULT)
    }

    /// Copies `bytes` to `address`.
    pub fn write_bytes(&self, address: u64, bytes: &[u8]) -> Result<(), Errno> {
        self.machine.write_memory(address, bytes).map_err(|_| Errno::EFAULT)
    }

    /// Fills as much of `buffer` from `address` as can be read before the
    /// first fault, a page at a time once the whole copy faults; returns
    /// the bytes read. A transfer that faults partway is a short count on
    /// Linux, not an error.
    pub fn read_until_fault(&self, address: u64, buffer: &mut [u8]) -> usize {
        if self.read_into(address, buffer).is_ok() {
            return buffer.len();
        }
        let mut done = 0;
        while done < buffer.len() {
            let at = address.wrapping_add(done as u64);
            let step = ((PAGE_SIZE - at % PAGE_SIZE) as usize).min(buffer.len() - done);
            if self.read_into(at, &mut buffer[done..done + step]).is_err() {
                break;
            }
            done += step;
        }
        done
    }

    /// Copies as much of `bytes` to `address` as can be written before the
    /// first fault (see [`User::read_until_fault`]); returns the bytes
    /// written.
    pub fn write_until_fault(&self, address: u64, bytes: &[u8]) -> usize {
        if self.write_bytes(address, bytes).is_ok() {
            return bytes.len();
        }
        let mut done = 0;
        while done < bytes.len() {
            let at = address.wrapping_add(done as u64);
            let step = ((PAGE_SIZE - at % PAGE_SIZE) as usize).min(bytes.len() - done);
            if self.write_bytes(at, &bytes[done..done + step]).is_err() {
                break;
            }
            done += step;
        }
        done
    }

    /// Reads a little-endian `u64`.
    pub fn read_u64(&self, address: u64) -> Result<u64, Errno> {
        let mut bytes = [0u8; 8];
        self.read_into(address, &mut bytes)?;
        Ok(u64::from_le_bytes(bytes))
    }

    /// Writes a little-endian `u64`.
    pub fn write_u64(&self, address: u64, value: u64) -> Result<(), Errno> {
        self.write_bytes(address, &value.to_le_bytes())
    }

    /// Writes a little-endian `u32`.
    pub fn write_u32(&self, address: u64, value: u32) -> Result<(), Errno> {
        self.write_bytes(address, &value.to_le_bytes())
    }

    /// Reads a NUL-terminated string of at most `limit` bytes (NUL
    /// included), never reading past the page that holds its NUL.
    pub fn read_c_string(&self, address: u64, limit: usize) -> Result<Vec<u8>, Errno> {
        let mut bytes = Vec::new();
        let mut cursor = address;
        while bytes.len() < limit {
            let to_page_end = (PAGE_SIZE - cursor % PAGE_SIZE) as usize;
            let chunk = to_page_end.min(limit - bytes.len()).min(256);
            let start = bytes.len();
            bytes.resize(start + chunk, 0);
            self.read_into(cursor, &mut bytes[start..])?;
            if let Some(nul) = bytes[start..].iter().position(|&byte| byte == 0) {
                bytes.truncate(start + nul);
                return Ok(bytes);
            }
            cursor = cursor.checked_add(chunk as u64).ok_or(Errno::EFAULT)?;
        }
        Err(Errno::ENAMETOOLONG)
    }

    /// Reads a path argument.
    pub fn read_path(&self, address: u64) -> Result<String, Errno> {
        let bytes = self.read_c_string(address, PATH_MAX)?;
        String::from_utf8(bytes).map_err(|_| Errno::ENOENT)
    }

    /// Reads an array of `struct iovec` (base, length) pairs.
    pub fn read_iovecs(&self, address: u64, count: u64) -> Result<Vec<(u64, u64)>, Errno> {
        const IOV_MAX: u64 = 1024;
        if count > IOV_MAX {
            return Err(Errno::EINVAL);
        }
        let bytes = self.read_bytes(address, count as usize * 16)?;
        let vectors: Vec<(u64, u64)> = bytes
            .chunks_exact(16)
            .map(|chunk| {
                let word = |at: usize| {
                    let mut raw = [0u8; 8];
                    raw.copy_from_slice(&chunk[at..at + 8]);
                    u64::from_le_bytes(raw)
                };
                (word(0), word(8))
            })
            .collect();
        let total = vectors.iter().try_fold(0u64, |total, (_, length)| total.checked_add(*length));
        if total.is_none_or(|total| total > i64::MAX as u64) {
            return Err(Errno::EINVAL);
        }
        Ok(vectors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeMachine;
    use crate::machine::Rights;
    use alloc::vec;

    #[test]
    fn strings_stop_at_the_nul_and_at_the_limit() {
        let machine = FakeMachine::new();
        machine.map_page(0x1000, Rights::READ_WRITE).unwrap();
        // A string that ends exactly at the end of the only mapped page.
        machine.write_memory(0x1ffa, b"hello\0").unwrap();
        let user = User::new(&machine);
        assert_eq!(user.read_c_string(0x1ffa, 100).unwrap(), b"hello");
        machine.write_memory(0x1ffa, b"hello!").unwrap();
        assert_eq!(user.read_c_string(0x1ffa, 100), Err(Errno::EFAULT));
        assert_eq!(user.read_c_string(0x1ffa, 3), Err(Errno::ENAMETOOLONG));
        assert_eq!(user.read_c_string(0x5000, 3), Err(Errno::EFAULT));
    }

    #[test]
    fn copies_that_fault_partway_stop_at_the_fault() {
        let machine = FakeMachine::new();
        machine.map_page(0x1000, Rights::READ_WRITE).unwrap();
        let user = User::new(&machine);
        let mut buffer = [0u8; 0x3000];
        assert_eq!(user.read_until_fault(0x1800, &mut buffer), 0x800);
        assert_eq!(user.read_until_fault(0x1000, &mut buffer[..0x1000]), 0x1000);
        assert_eq!(user.read_until_fault(0x3000, &mut buffer), 0);
        assert_eq!(user.write_until_fault(0x1f00, &[7u8; 0x200]), 0x100);
        assert_eq!(user.read_bytes(0x1ffe, 2).unwrap(), [7, 7]);
    }

    #[test]
    fn iovecs_are_decoded_and_checked() {
        let machine = FakeMachine::new();
        machine.map_page(0x1000, Rights::READ_WRITE).unwrap();
        let mut table = Vec::new();
        for (base, length) in [(0x1100u64, 5u64), (0x1200, 7)] {
            table.extend_from_slice(&base.to_le_bytes());
            table.extend_from_slice(&length.to_le_bytes());
        }
        machine.write_memory(0x1000, &table).unwrap();
        let user = User::new(&machine);
        assert_eq!(user.read_iovecs(0x1000, 2).unwrap(), vec![(0x1100, 5), (0x1200, 7)]);
        assert_eq!(user.read_iovecs(0x1000, 5000), Err(Errno::EINVAL));
        machine.write_memory(0x1018, &u64::MAX.to_le_bytes()).unwrap();
        assert_eq!(user.read_iovecs(0x1000, 2), Err(Errno::EINVAL));
    }
}
