//! The data path of an NFS file: reads and writes split into calls of the
//! transfer size, several in flight at once.

use alloc::vec::Vec;

use super::*;

impl NfsNode {
    /// Reads `length` bytes from `offset` into a vector with calls of at
    /// most `call_bytes` bytes, up to [`CALLS_IN_FLIGHT`] at once; shorter
    /// at the end of the file.
    pub(super) fn fetch(
        &self,
        caller: &Caller<'_>,
        offset: u64,
        length: usize,
        call_bytes: usize,
    ) -> Result<Vec<u8>, FsError> {
        let mut data = Vec::new();
        let mut next = 0usize;
        while next < length {
            let mut tickets: Vec<(usize, Ticket)> = Vec::new();
            while next < length && tickets.len() < CALLS_IN_FLIGHT {
                let count = call_bytes.min(length - next);
                let start = offset + next as u64;
                let ticket = self.shared.client.start(caller, protocol::nfs(procedure::READ), |arguments| {
                    self.handle.encode(arguments);
                    arguments.u64(start).u32(count as u32);
                });
                tickets.push((count, ticket));
                next += count;
            }
            let mut is_short = false;
            let mut failure = None;
            for (count, ticket) in tickets {
                let result = self.shared.client.wait(ticket).and_then(|reply| self.read_reply(&reply, count));
                match result {
                    Ok(bytes) if !is_short && failure.is_none() => {
                        is_short = bytes.len() < count;
                        data.extend_from_slice(&bytes);
                    }
                    Ok(_) => {}
                    Err(error) => failure = failure.or(Some(error)),
                }
            }
            match failure {
                Some(error) if data.is_empty() => return Err(error),
                Some(_) => return Ok(data),
                None if is_short => return Ok(data),
                None => {}
            }
        }
        Ok(data)
    }

    /// The data of a `READ` reply.
    pub(super) fn read_reply(&self, reply: &[u8], count: usize) -> Result<Vec<u8>, FsError> {
        let mut results = protocol::results(reply)?;
        let status = protocol::status(&mut results);
        let attributes = decode(&mut results, Attributes::decode_optional)?;
        status?;
        if let Some(attributes) = attributes {
            self.note(attributes, self.now());
        }
        let bytes = decode(&mut results, |results| {
            let _count = results.u32()?;
            let _is_end = results.bool()?;
            results.opaque(count)
        })?;
        Ok(bytes.to_vec())
    }

    /// Writes `bytes` at `offset` with calls of at most `wsize` bytes, up
    /// to [`CALLS_IN_FLIGHT`] at once; returns the bytes the server took
    /// from the start.
    pub(super) fn store(&self, caller: &Caller<'_>, offset: u64, bytes: &[u8]) -> Result<usize, FsError> {
        let call_bytes = self.shared.write_bytes;
        let mut written = 0usize;
        let mut next = 0usize;
        while next < bytes.len() {
            let mut tickets: Vec<(usize, Ticket)> = Vec::new();
            while next < bytes.len() && tickets.len() < CALLS_IN_FLIGHT {
                let count = call_bytes.min(bytes.len() - next);
                let chunk = &bytes[next..next + count];
                let start = offset + next as u64;
                let ticket = self.shared.client.start(caller, protocol::nfs(procedure::WRITE), |arguments| {
                    self.handle.encode(arguments);
                    arguments.u64(start).u32(count as u32).u32(Stability::Unstable as u32).opaque(chunk);
                });
                tickets.push((count, ticket));
                next += count;
            }
            let mut is_short = false;
            let mut failure = None;
            for (count, ticket) in tickets {
                let result = self.shared.client.wait(ticket).and_then(|reply| self.write_reply(&reply));
                match result {
                    Ok(taken) if !is_short && failure.is_none() => {
                        written += taken.min(count);
                        is_short = taken < count;
                    }
                    Ok(_) => {}
                    Err(error) => failure = failure.or(Some(error)),
                }
            }
            match failure {
                Some(error) if written == 0 => return Err(error),
                Some(_) => return Ok(written),
                None if is_short => return Ok(written),
                None => {}
            }
        }
        Ok(written)
    }

    /// The count of a `WRITE` reply; notes an uncommitted write's
    /// verifier.
    pub(super) fn write_reply(&self, reply: &[u8]) -> Result<usize, FsError> {
        let mut results = protocol::results(reply)?;
        let status = protocol::status(&mut results);
        let attributes = decode(&mut results, protocol::decode_wcc)?;
        status?;
        let (count, committed, verifier) = decode(&mut results, |results| {
            let count = results.u32()?;
            let committed = results.u32()?;
            let mut verifier = [0u8; 8];
            verifier.copy_from_slice(results.fixed(8)?);
            Ok((count, committed, verifier))
        })?;
        if let Some(attributes) = attributes {
            // Our own change: the cached contents go all the same.
            self.note(attributes, self.now());
        }
        if committed != Stability::FileSync as u32 {
            *self.uncommitted.lock() = Some(verifier);
        }
        Ok(count as usize)
    }

    /// `COMMIT`s uncommitted writes. A server that restarted since (a new
    /// verifier) may have lost them: `Io`.
    pub(in crate::fs::nfs) fn commit(&self, caller: &Caller<'_>) -> Result<(), FsError> {
        let Some(written) = *self.uncommitted.lock() else { return Ok(()) };
        let reply = self.shared.client.call(caller, protocol::nfs(procedure::COMMIT), |arguments| {
            self.handle.encode(arguments);
            arguments.u64(0).u32(0);
        })?;
        let mut results = protocol::results(&reply)?;
        let status = protocol::status(&mut results);
        let attributes = decode(&mut results, protocol::decode_wcc)?;
        status?;
        self.note_optional(attributes);
        let mut verifier = [0u8; 8];
        verifier.copy_from_slice(decode(&mut results, |results| results.fixed(8))?);
        let mut uncommitted = self.uncommitted.lock();
        if *uncommitted == Some(written) {
            *uncommitted = None;
        }
        if verifier != written {
            log::warn!("nfs: the server restarted before a COMMIT; written data may be lost");
            return Err(FsError::Io);
        }
        Ok(())
    }
}
