//! The schema migrations, embedded in the binary (the same SQL for SQLite and PostgreSQL).
//!
//! To change the schema add `migrations/NNNN_what.sql` and a line to `MIGRATIONS`; applied migrations are
//! never edited (sqlx refuses a changed checksum).

use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};

/// (version, description, SQL), oldest first.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "ledger", include_str!("../../migrations/0001_ledger.sql")),
    (2, "metering", include_str!("../../migrations/0002_metering.sql")),
    (3, "storage_samples", include_str!("../../migrations/0003_storage_samples.sql")),
    (4, "billing_periods", include_str!("../../migrations/0004_billing_periods.sql")),
    (5, "api_keys", include_str!("../../migrations/0005_api_keys.sql")),
    (6, "web_sessions", include_str!("../../migrations/0006_web_sessions.sql")),
    (7, "web_session_tokens", include_str!("../../migrations/0007_web_session_tokens.sql")),
    (8, "usage_hourly_by_time", include_str!("../../migrations/0008_usage_hourly_by_time.sql")),
];

/// The newest schema version this binary knows.
pub const LATEST_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].0;

#[derive(Debug)]
struct Embedded;

impl MigrationSource<'static> for Embedded {
    fn resolve(self) -> futures::future::BoxFuture<'static, Result<Vec<Migration>, BoxDynError>> {
        Box::pin(async {
            Ok(MIGRATIONS
                .iter()
                .map(|(version, description, sql)| {
                    Migration::new(*version, (*description).into(), MigrationType::Simple, (*sql).into(), false)
                })
                .collect())
        })
    }
}

/// A migrator over the embedded migrations. It locks (PostgreSQL advisory lock) so that two replicas starting
/// at once migrate one after the other; SQLite is serialised by the caller with a file lock.
pub(crate) async fn migrator() -> Result<Migrator, sqlx::migrate::MigrateError> {
    Migrator::new(Embedded).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file in migrations/ is embedded, in order, under the version its name says.
    #[test]
    fn every_migration_file_is_embedded() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        let embedded: Vec<String> = MIGRATIONS.iter().map(|(v, d, _)| format!("{v:04}_{d}.sql")).collect();
        assert_eq!(files, embedded);
        assert!(MIGRATIONS.windows(2).all(|w| w[0].0 < w[1].0));
    }
}
