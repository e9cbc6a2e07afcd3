//! A page cache: the pages of a filesystem's files read from its disk.
//!
//! Pages are kept by (inode, page index) and handed out as shared
//! references, so every mapping of a file's page uses one frame. Pages that
//! only the cache holds are given back when RAM runs short (the cache is a
//! [`Reclaim`]er): a file that is not read-write can always read them again.

use alloc::collections::BTreeMap;
use alloc::sync::Arc;

use spin::Mutex;

use super::{OutOfMemory, PAGE_SIZE, Page, Reclaim};

/// The cached pages of one filesystem's files.
#[derive(Debug, Default)]
pub struct PageCache {
    pages: Mutex<BTreeMap<(u64, u64), Page>>,
}

/// Why a page could not be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheError<E> {
    /// No RAM was left for it.
    OutOfMemory,
    /// Reading it failed.
    Fill(E),
}

impl<E> From<OutOfMemory> for CacheError<E> {
    fn from(_: OutOfMemory) -> Self {
        CacheError::OutOfMemory
    }
}

impl PageCache {
    /// An empty cache that gives pages back when RAM runs short.
    pub fn new() -> Arc<PageCache> {
        let cache = Arc::new(PageCache::default());
        let weak: alloc::sync::Weak<PageCache> = Arc::downgrade(&cache);
        super::register_reclaimer(weak);
        cache
    }

    /// Page `index` of file `inode`, read with `fill` (which gets the page's
    /// bytes to fill, zeroed) unless the cache has it.
    pub fn page<E>(
        &self,
        inode: u64,
        index: u64,
        fill: impl FnOnce(&mut [u8]) -> Result<(), E>,
    ) -> Result<Page, CacheError<E>> {
        if let Some(page) = self.pages.lock().get(&(inode, index)) {
            return Ok(page.share()?);
        }
        // Read without the lock: allocating may make this very cache give
        // pages back, and other pages can be read meanwhile.
        let page = Page::new()?;
        let mut bytes = [0u8; PAGE_SIZE];
        fill(&mut bytes).map_err(CacheError::Fill)?;
        page.write(0, &bytes);
        let mut pages = self.pages.lock();
        let cached = pages.entry((inode, index)).or_insert(page);
        Ok(cached.share()?)
    }

    /// Whether page `index` of file `inode` is cached.
    pub fn contains(&self, inode: u64, index: u64) -> bool {
        self.pages.lock().contains_key(&(inode, index))
    }

    /// How many pages the cache holds.
    pub fn len(&self) -> usize {
        self.pages.lock().len()
    }

    /// Whether the cache holds no page.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Reclaim for PageCache {
    fn reclaim(&self) -> usize {
        let mut pages = self.pages.lock();
        let before = pages.len();
        pages.retain(|_, page| page.users() > 1);
        before - pages.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_read_once_and_shared() {
        let cache = PageCache::new();
        let mut reads = 0;
        let first = cache
            .page::<()>(7, 2, |bytes| {
                reads += 1;
                bytes[..3].copy_from_slice(b"abc");
                Ok(())
            })
            .unwrap();
        let second = cache.page::<()>(7, 2, |_| panic!("read again")).unwrap();
        assert_eq!(reads, 1);
        assert_eq!(first.frame(), second.frame());
        let mut buffer = [0u8; 3];
        second.read(0, &mut buffer);
        assert_eq!(&buffer, b"abc");
        assert_eq!(cache.page::<&str>(7, 3, |_| Err("bad sector")), Err(CacheError::Fill("bad sector")));
    }

    #[test]
    fn pages_nobody_else_holds_are_given_back() {
        let cache = PageCache::new();
        let held = cache.page::<()>(1, 0, |_| Ok(())).unwrap();
        drop(cache.page::<()>(1, 1, |_| Ok(())).unwrap());
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.reclaim(), 1);
        assert_eq!(cache.len(), 1);
        drop(held);
        assert_eq!(cache.reclaim(), 1);
        assert!(cache.is_empty());
    }
}
