//! A real PostgreSQL for the tests of a node on `CHALKTALK_STORE=postgres://...`:
//! the adapters crate's throwaway server (Debian's `initdb`/`pg_ctl` in a
//! temp dir, see `chalktalk_adapters::postgres::test_server`), or the
//! outside one named by `CHALKTALK_TEST_POSTGRES`, with a fresh database
//! per test. In-process nodes use it through [`super::server::Builder::postgres`],
//! child nodes through `.env("CHALKTALK_STORE", &url)`.

pub use chalktalk_adapters::postgres::test_server::TestServer as Postgres;

/// A PostgreSQL server (stopped when dropped) and the URL of a fresh
/// database on it.
pub async fn start() -> (Postgres, String) {
    let pg = Postgres::start();
    let url = pg.fresh_db().await;
    (pg, url)
}

/// Whether the tests run against an outside server
/// (`CHALKTALK_TEST_POSTGRES`), which they cannot stop.
pub fn outside() -> bool {
    std::env::var_os("CHALKTALK_TEST_POSTGRES").is_some()
}
