//! The kernel's random numbers (`getrandom`, `AT_RANDOM`): ChaCha20 seeded
//! from the processor's generator when it has one, else from clock jitter.
//!
//! Each process has its own [`Random`]. Entropy the host gives the whole
//! machine ([`add_machine_entropy`], when a VM is restored from a snapshot)
//! starts a new generation, which every generator mixes in before its next
//! output, as Linux's generators reseed when the base generation changes.

use core::sync::atomic::{AtomicU64, Ordering};

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

use crate::machine::Machine;

/// A cryptographically strong generator.
#[derive(Debug, Clone)]
pub struct Random {
    generator: ChaCha20Rng,
    is_hardware_seeded: bool,
    /// The machine entropy generation last mixed in.
    machine_generation: u64,
}

/// Words of entropy given to the whole machine.
const MACHINE_ENTROPY_WORDS: usize = 4;
/// The latest entropy given to the whole machine.
static MACHINE_ENTROPY: [AtomicU64; MACHINE_ENTROPY_WORDS] =
    [const { AtomicU64::new(0) }; MACHINE_ENTROPY_WORDS];
/// Counts the entropy given to the machine (0: none yet).
static MACHINE_GENERATION: AtomicU64 = AtomicU64::new(0);

/// Gives every generator of the machine `entropy` to mix in before its
/// next output. Never waits: interrupt handlers call it.
pub fn add_machine_entropy(entropy: &[u8; 8 * MACHINE_ENTROPY_WORDS]) {
    for (word, bytes) in MACHINE_ENTROPY.iter().zip(entropy.chunks_exact(8)) {
        let mut value = [0u8; 8];
        value.copy_from_slice(bytes);
        word.fetch_xor(u64::from_le_bytes(value), Ordering::Relaxed);
    }
    MACHINE_GENERATION.fetch_add(1, Ordering::Release);
}

impl Random {
    /// Seeds a generator from `machine`.
    pub fn seeded(machine: &dyn Machine) -> Self {
        let mut seed = [0u8; 32];
        let mut is_hardware_seeded = true;
        for chunk in seed.chunks_exact_mut(8) {
            let word = machine.hardware_random().unwrap_or_else(|| {
                is_hardware_seeded = false;
                jitter(machine)
            });
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        let mut random =
            Random { generator: ChaCha20Rng::from_seed(seed), is_hardware_seeded, machine_generation: 0 };
        random.mix_machine_entropy();
        random
    }

    /// Whether the seed came from a hardware generator.
    pub fn is_hardware_seeded(&self) -> bool {
        self.is_hardware_seeded
    }

    /// Fills `buffer` with random bytes.
    pub fn fill(&mut self, buffer: &mut [u8]) {
        self.generator.fill_bytes(buffer);
    }

    /// Mixes the machine's new entropy, if any, and a word from
    /// `machine`'s hardware generator, when it has one, into the generator:
    /// done before each request for random bytes, as Linux mixes its
    /// processor's generator into its output. VMs resumed from one snapshot
    /// hold the same generator state; this makes their next random bytes
    /// differ.
    pub fn mix_hardware(&mut self, machine: &dyn Machine) {
        self.mix_machine_entropy();
        if let Some(word) = machine.hardware_random() {
            self.add_entropy(&word.to_le_bytes());
        }
    }

    /// Mixes in the machine's entropy if the host gave some since the last
    /// time (see [`add_machine_entropy`]).
    fn mix_machine_entropy(&mut self) {
        self.mix_generation(MACHINE_GENERATION.load(Ordering::Acquire), || {
            let mut entropy = [0u8; 8 * MACHINE_ENTROPY_WORDS];
            for (bytes, word) in entropy.chunks_exact_mut(8).zip(&MACHINE_ENTROPY) {
                bytes.copy_from_slice(&word.load(Ordering::Relaxed).to_le_bytes());
            }
            entropy
        });
    }

    /// Mixes `entropy()` in if `generation` is not the one last mixed.
    fn mix_generation(&mut self, generation: u64, entropy: impl FnOnce() -> [u8; 8 * MACHINE_ENTROPY_WORDS]) {
        if generation != self.machine_generation {
            self.machine_generation = generation;
            self.add_entropy(&entropy());
        }
    }

    /// Mixes `entropy` (from a hardware generator, or written to
    /// `/dev/random`) into the generator: the new seed is the generator's
    /// next output with the entropy folded in, so it stays unpredictable as
    /// long as either the old state or the new bytes were.
    pub fn add_entropy(&mut self, entropy: &[u8]) {
        if entropy.is_empty() {
            return;
        }
        let mut seed = [0u8; 32];
        self.generator.fill_bytes(&mut seed);
        for (index, byte) in entropy.iter().enumerate() {
            seed[index % seed.len()] ^= byte.rotate_left((index / seed.len()) as u32 % 8);
        }
        self.generator = ChaCha20Rng::from_seed(seed);
    }
}

/// Mixes many clock readings into one word (FNV-1a over their low bits).
fn jitter(machine: &dyn Machine) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for _ in 0..64 {
        hash ^= machine.monotonic_ns() ^ machine.realtime_ns().rotate_left(17);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeMachine;

    #[test]
    fn fills_buffers_with_different_bytes() {
        let machine = FakeMachine::new();
        let mut random = Random::seeded(&machine);
        assert!(!random.is_hardware_seeded());
        let (mut first, mut second) = ([0u8; 32], [0u8; 32]);
        random.fill(&mut first);
        random.fill(&mut second);
        assert_ne!(first, second);
        assert_ne!(first, [0u8; 32]);
    }

    #[test]
    fn copies_of_one_state_diverge_once_the_machine_gets_entropy() {
        // Two VMs resumed from one snapshot, each told its own entropy.
        let machine = FakeMachine::new();
        let snapshot = Random::seeded(&machine);
        let generation = snapshot.machine_generation + 1;
        let (mut first, mut second) = (snapshot.clone(), snapshot.clone());
        first.mix_generation(generation, || [1; 32]);
        second.mix_generation(generation, || [2; 32]);
        let (mut first_bytes, mut second_bytes) = ([0u8; 16], [0u8; 16]);
        first.fill(&mut first_bytes);
        second.fill(&mut second_bytes);
        assert_ne!(first_bytes, second_bytes);
        // A generation is mixed in once: the same generation again changes
        // nothing.
        let (mut again, mut unchanged) = (first.clone(), first.clone());
        again.mix_generation(generation, || [3; 32]);
        again.fill(&mut first_bytes);
        unchanged.fill(&mut second_bytes);
        assert_eq!(first_bytes, second_bytes);
    }

    #[test]
    fn copies_of_one_state_diverge_when_the_hardware_has_a_generator() {
        // Two VMs resumed from one snapshot: the same generator state.
        let machine = FakeMachine::new();
        let snapshot = Random::seeded(&machine);
        let (mut first, mut second) = (snapshot.clone(), snapshot.clone());
        let (mut first_bytes, mut second_bytes) = ([0u8; 16], [0u8; 16]);
        // Without a hardware generator, nothing tells them apart.
        first.mix_hardware(&machine);
        second.mix_hardware(&machine);
        first.fill(&mut first_bytes);
        second.fill(&mut second_bytes);
        assert_eq!(first_bytes, second_bytes);
        // Each VM's generator gives its own words.
        let (first_machine, second_machine) = (FakeMachine::new(), FakeMachine::new());
        first_machine.hardware_random.store(7, std::sync::atomic::Ordering::Relaxed);
        second_machine.hardware_random.store(1000, std::sync::atomic::Ordering::Relaxed);
        let (mut first, mut second) = (snapshot.clone(), snapshot);
        first.mix_hardware(&first_machine);
        second.mix_hardware(&second_machine);
        first.fill(&mut first_bytes);
        second.fill(&mut second_bytes);
        assert_ne!(first_bytes, second_bytes);
    }

    #[test]
    fn added_entropy_changes_the_stream() {
        let machine = FakeMachine::new();
        let random = Random::seeded(&machine);
        let (mut plain, mut mixed) = (random.clone(), random);
        mixed.add_entropy(b"from the disk");
        let (mut first, mut second) = ([0u8; 32], [0u8; 32]);
        plain.fill(&mut first);
        mixed.fill(&mut second);
        assert_ne!(first, second);
    }
}
