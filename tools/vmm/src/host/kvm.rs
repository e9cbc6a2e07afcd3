//! Unsafe code (with `tap`'s one ioctl): lending guest memory to KVM.
//!
//! KVM reaches guest RAM through host virtual addresses
//! (KVM_SET_USER_MEMORY_REGION), so the mapping must outlive every file
//! descriptor through which a guest can still run: the VM's and each
//! vCPU's. [`Vm`] and [`Vcpu`] each hold the memory by an `Arc` and close
//! their descriptor before they let go of it.

use std::sync::Arc;

use kvm_bindings::kvm_userspace_memory_region;
use kvm_ioctls::{Kvm, VcpuFd, VmFd};
use vm_memory::{Address, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion};

/// A VM whose RAM is registered with KVM.
#[derive(Debug)]
pub struct Vm {
    // Declared before `memory`: fields drop in order, so the descriptor is
    // closed while the mapping still exists.
    fd: VmFd,
    memory: Arc<GuestMemoryMmap>,
}

/// A vCPU of a [`Vm`].
#[derive(Debug)]
pub struct Vcpu {
    // As in `Vm`: the descriptor goes first.
    fd: VcpuFd,
    _memory: Arc<GuestMemoryMmap>,
}

impl Vm {
    /// Creates a VM on `kvm` and gives it `memory` as its RAM, one memory
    /// slot per region.
    pub fn new(kvm: &Kvm, memory: GuestMemoryMmap) -> Result<Vm, kvm_ioctls::Error> {
        let fd = kvm.create_vm()?;
        let memory = Arc::new(memory);
        for (slot, region) in memory.iter().enumerate() {
            let host_address = region
                .get_host_address(vm_memory::MemoryRegionAddress(0))
                .map_err(|_| kvm_ioctls::Error::new(libc::EFAULT))?;
            let description = kvm_userspace_memory_region {
                slot: slot as u32,
                flags: 0,
                guest_phys_addr: region.start_addr().raw_value(),
                memory_size: region.len(),
                userspace_addr: host_address as u64,
            };
            // SAFETY: (1) `host_address .. + len` is the anonymous mapping
            // of this region, owned by `memory`; (2) the mapping lives as
            // long as `memory`, which this VM and each of its vCPUs keep
            // until after they have closed their descriptors (see the field
            // order of `Vm` and `Vcpu`), so KVM never reaches it once it is
            // unmapped; (3) the regions do not overlap, vm-memory checks that.
            unsafe { fd.set_user_memory_region(description)? };
        }
        Ok(Vm { fd, memory })
    }

    /// The VM's descriptor, for the ioctls that need no memory.
    pub fn fd(&self) -> &VmFd {
        &self.fd
    }

    /// Guest RAM.
    pub fn memory(&self) -> &GuestMemoryMmap {
        &self.memory
    }

    /// Guest RAM, shared: for devices that reach it from any vCPU thread.
    /// Every holder only prolongs the mapping's life.
    pub fn memory_handle(&self) -> Arc<GuestMemoryMmap> {
        self.memory.clone()
    }

    /// Creates the vCPU with index (and local APIC id) `id`.
    pub fn create_vcpu(&self, id: u64) -> Result<Vcpu, kvm_ioctls::Error> {
        Ok(Vcpu { fd: self.fd.create_vcpu(id)?, _memory: self.memory.clone() })
    }
}

impl Vcpu {
    /// The vCPU's descriptor.
    pub fn fd(&mut self) -> &mut VcpuFd {
        &mut self.fd
    }

    /// The sub-error code of the last KVM_EXIT_INTERNAL_ERROR.
    pub fn internal_error(&mut self) -> u32 {
        let run = self.fd.get_kvm_run();
        // SAFETY: after KVM_EXIT_INTERNAL_ERROR KVM fills the `internal`
        // member of the exit union; any bit pattern is a valid `u32`.
        unsafe { run.__bindgen_anon_1.internal.suberror }
    }
}
