//! The embedded adapter of the key-value port ([`crate::kv::Kv`]): one
//! redb table keyed by (namespace, key), written through the same
//! group-commit writer as everything else.

use async_trait::async_trait;
use chalktalk_actors::store::StoreError;
use redb::{ReadableTable, StorageError, Table, TableDefinition};

use super::{EmbeddedStore, unavailable};
use crate::kv::{Kv, KvBatch, KvCond};

/// (namespace, key) -> value.
pub(super) const KV: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("kv");

/// The kv table of one write transaction.
pub(super) struct KvTable<'txn>(Table<'txn, (&'static str, &'static str), &'static [u8]>);

pub(super) fn open_table(txn: &redb::WriteTransaction) -> Result<KvTable<'_>, StoreError> {
    Ok(KvTable(txn.open_table(KV).map_err(unavailable)?))
}

pub(super) fn apply(
    t: &mut KvTable<'_>,
    batch: &KvBatch,
) -> Result<Result<bool, StoreError>, StorageError> {
    for c in &batch.conds {
        let ok = match c {
            KvCond::Absent { ns, key } => t.0.get((*ns, key.as_str()))?.is_none(),
            KvCond::Equals { ns, key, value } => {
                t.0.get((*ns, key.as_str()))?
                    .is_some_and(|g| g.value() == value.as_slice())
            }
        };
        if !ok {
            return Ok(Ok(false));
        }
    }
    for (ns, key, value) in &batch.writes {
        match value {
            Some(v) => {
                t.0.insert((*ns, key.as_str()), v.as_slice())?;
            }
            None => {
                t.0.remove((*ns, key.as_str()))?;
            }
        }
    }
    Ok(Ok(true))
}

#[async_trait]
impl Kv for EmbeddedStore {
    async fn get(&self, ns: &'static str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let key = key.to_string();
        self.read(move |txn| {
            let t = match txn.open_table(KV) {
                Ok(t) => t,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
                Err(e) => return Err(unavailable(e)),
            };
            Ok(t.get((ns, key.as_str()))
                .map_err(unavailable)?
                .map(|g| g.value().to_vec()))
        })
        .await
    }

    async fn scan(
        &self,
        ns: &'static str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let prefix = prefix.to_string();
        self.read(move |txn| {
            let t = match txn.open_table(KV) {
                Ok(t) => t,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
                Err(e) => return Err(unavailable(e)),
            };
            let mut out = Vec::new();
            for item in t.range((ns, prefix.as_str())..).map_err(unavailable)? {
                let (k, v) = item.map_err(unavailable)?;
                let (kns, key) = k.value();
                if kns != ns || !key.starts_with(prefix.as_str()) || out.len() >= limit {
                    break;
                }
                out.push((key.to_string(), v.value().to_vec()));
            }
            Ok(out)
        })
        .await
    }

    async fn apply(&self, batch: KvBatch) -> Result<bool, StoreError> {
        batch.cond_partition()?;
        self.write_kv(batch).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn passes_kv_conformance_and_races() {
        let dir = tempfile::tempdir().unwrap();
        let s = EmbeddedStore::open(dir.path()).unwrap();
        crate::conformance::kv::run_all(s.clone()).await;
        crate::conformance::races::run_kv(s.clone(), s.clone()).await;
        crate::conformance::races::run_store(s.clone(), s).await;
    }

    #[tokio::test]
    async fn conditional_batches_and_prefix_scans() {
        let dir = tempfile::tempdir().unwrap();
        let s = EmbeddedStore::open(dir.path()).unwrap();
        assert!(
            s.apply(
                KvBatch::default()
                    .if_absent("acct", "a@x")
                    .put("acct", "a@x", b"1".to_vec())
            )
            .await
            .unwrap()
        );
        assert!(
            !s.apply(
                KvBatch::default()
                    .if_absent("acct", "a@x")
                    .put("acct", "a@x", b"2".to_vec())
            )
            .await
            .unwrap()
        );
        assert_eq!(s.get("acct", "a@x").await.unwrap(), Some(b"1".to_vec()));
        assert!(
            !s.apply(
                KvBatch::default()
                    .if_equals("acct", "a@x", b"9".to_vec())
                    .delete("acct", "a@x")
            )
            .await
            .unwrap()
        );
        assert!(
            s.apply(
                KvBatch::default()
                    .if_equals("acct", "a@x", b"1".to_vec())
                    .put("acct", "a@x", b"3".to_vec())
            )
            .await
            .unwrap()
        );
        for k in ["s/u1/1", "s/u1/2", "s/u2/1"] {
            s.apply(KvBatch::default().put("sess", k, k.as_bytes().to_vec()))
                .await
                .unwrap();
        }
        let u1: Vec<String> = s
            .scan("sess", "s/u1/", 10)
            .await
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(u1, vec!["s/u1/1", "s/u1/2"]);
        assert_eq!(s.scan("sess", "s/", 1).await.unwrap().len(), 1);
        assert!(s.scan("other", "", 10).await.unwrap().is_empty());
        s.apply(KvBatch::default().delete("sess", "s/u1/1"))
            .await
            .unwrap();
        assert_eq!(s.scan("sess", "s/u1/", 10).await.unwrap().len(), 1);
        drop(s);
        let s = EmbeddedStore::open(dir.path()).unwrap();
        assert_eq!(
            s.get("acct", "a@x").await.unwrap(),
            Some(b"3".to_vec()),
            "durable across reopen"
        );
    }
}
