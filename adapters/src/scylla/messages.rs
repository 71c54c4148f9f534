//! Reading messages for [`ScyllaStore`] across their buckets
//! (`bucket = seq / 1024`, cql/002): forwards from a seq, bucket after
//! bucket while each is full to its end; backwards from a seq, bucket
//! before bucket, jumping first to the thread's last bucket when the seq
//! lies past it. Each bucket is read with the driver's paging state.

use chalktalk_actors::store::StoreError;
use chalktalk_protocol::Message;

use super::append::{BUCKET, bucket_of};
use super::store::bodies;
use super::{ScyllaStore, clamp, limit_of};

impl ScyllaStore {
    pub(super) async fn read_messages_after(
        &self,
        thread: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError> {
        let inner = &self.inner;
        let mut out: Vec<Message> = Vec::new();
        let mut bucket = bucket_of(after.saturating_add(1));
        while out.len() < limit {
            let want = limit - out.len();
            let values = (thread, bucket, clamp(after), limit_of(want));
            let page: Vec<Message> = inner
                .pages(
                    &inner.st.MESSAGES_AFTER,
                    values,
                    want,
                    bodies("message", thread),
                )
                .await?;
            let last = page.last().map(|m| m.seq);
            out.extend(page);
            // The next bucket can hold more only if this one is full to its end.
            let end = u64::try_from(bucket).unwrap_or(0).saturating_add(1) * BUCKET - 1;
            if last != Some(end) {
                break;
            }
            bucket += 1;
        }
        Ok(out)
    }

    pub(super) async fn read_messages_before(
        &self,
        thread: &str,
        before: u64,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError> {
        if limit == 0 || before <= 1 {
            return Ok(Vec::new());
        }
        let inner = &self.inner;
        let mut newest_first: Vec<Message> = Vec::new();
        let mut bucket = bucket_of(before - 1);
        let mut checked_last = false;
        loop {
            let want = limit - newest_first.len();
            let values = (thread, bucket, clamp(before), limit_of(want));
            let page: Vec<Message> = inner
                .pages(
                    &inner.st.MESSAGES_BEFORE,
                    values,
                    want,
                    bodies("message", thread),
                )
                .await?;
            if page.is_empty() && !checked_last && bucket > 0 {
                // `before` may lie past the thread's end: jump to its last bucket.
                checked_last = true;
                match inner.last_bucket(thread).await? {
                    Some(last) if last < bucket => {
                        bucket = last;
                        continue;
                    }
                    Some(_) => {}
                    None => break,
                }
            }
            newest_first.extend(page);
            if newest_first.len() >= limit || bucket == 0 {
                break;
            }
            bucket -= 1;
        }
        newest_first.truncate(limit);
        newest_first.reverse();
        Ok(newest_first)
    }
}
