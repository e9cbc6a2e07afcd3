//! The monitor's interfaces to the host that need `unsafe`, and the only
//! place it may appear: registering guest memory with KVM (`kvm`) and
//! naming a tap device with the TUNSETIFF ioctl (`tap`). Each hands the rest
//! of the monitor safe types.

#![allow(unsafe_code)]

pub mod kvm;
pub mod tap;
