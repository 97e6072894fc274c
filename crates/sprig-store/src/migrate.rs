//! Schema migrations: `PRAGMA user_version` counts the steps applied; each step runs in its own
//! transaction together with the version bump, so a crash leaves the file at a whole version.

use rusqlite::Connection;

use crate::error::{Result, StoreError};

/// One schema step. Steps are numbered 1, 2, 3… and applied in order.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Migration {
    /// The `user_version` after this step.
    pub version: u32,
    /// SQL run inside the step's transaction.
    pub sql: &'static str,
}

/// Every schema step Sprig has shipped, oldest first. Never edit a shipped step: add a new one.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sql: include_str!("schema_v1.sql"),
    },
    Migration {
        version: 2,
        sql: include_str!("schema_v2.sql"),
    },
    Migration {
        version: 3,
        sql: include_str!("schema_v3.sql"),
    },
    Migration {
        version: 4,
        sql: include_str!("schema_v4.sql"),
    },
    Migration {
        version: 5,
        sql: include_str!("schema_v5.sql"),
    },
    Migration {
        version: 6,
        sql: include_str!("schema_v6.sql"),
    },
];

/// The newest schema this build knows.
pub(crate) fn latest(steps: &[Migration]) -> u32 {
    steps.last().map_or(0, |m| m.version)
}

pub(crate) fn user_version(conn: &Connection) -> Result<u32> {
    let v: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    // A negative or huge value can only come from something that is not our file, or a future
    // one; either way it is "newer than we know".
    Ok(u32::try_from(v).unwrap_or(u32::MAX))
}

/// Refuses a database from a newer Sprig before anything is written to it.
pub(crate) fn check_not_newer(conn: &Connection, steps: &[Migration]) -> Result<u32> {
    let found = user_version(conn)?;
    let supported = latest(steps);
    if found > supported {
        return Err(StoreError::TooNew { found, supported });
    }
    Ok(found)
}

/// Applies every step newer than the file's `user_version`, one transaction each.
/// Returns the resulting version.
pub(crate) fn migrate(conn: &mut Connection, steps: &[Migration]) -> Result<u32> {
    debug_assert!(
        steps
            .iter()
            .enumerate()
            .all(|(i, m)| m.version as usize == i + 1),
        "migration steps must be numbered 1, 2, 3… in order"
    );
    let found = check_not_newer(conn, steps)?;
    let mut current = found;
    for step in steps.iter().filter(|m| m.version > found) {
        let tx = conn.transaction()?;
        tx.execute_batch(step.sql)?;
        tx.pragma_update(None, "user_version", step.version)?;
        tx.commit()?;
        current = step.version;
    }
    Ok(current)
}

#[cfg(test)]
mod tests {
    use super::*;

    const V2: Migration = Migration {
        version: 2,
        sql: "ALTER TABLE media ADD COLUMN note TEXT NOT NULL DEFAULT 'none';
              CREATE TABLE test_v2 (x INTEGER);",
    };

    fn v1_db() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        assert_eq!(migrate(&mut conn, &MIGRATIONS[..1]).unwrap(), 1);
        conn
    }

    #[test]
    fn fresh_database_reaches_latest_version() {
        let mut conn = Connection::open_in_memory().unwrap();
        assert_eq!(migrate(&mut conn, MIGRATIONS).unwrap(), latest(MIGRATIONS));
        assert_eq!(user_version(&conn).unwrap(), latest(MIGRATIONS));
        // Running again is a no-op.
        assert_eq!(migrate(&mut conn, MIGRATIONS).unwrap(), latest(MIGRATIONS));
    }

    #[test]
    fn upgrade_from_v1_preserves_data() {
        let mut conn = v1_db();
        conn.execute(
            "INSERT INTO media (sha256, state, mime, size, captured_at) \
             VALUES (zeroblob(32), 'captured', 'image/jpeg', 3, 1)",
            [],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO sync_states (peer, doc_id, state, updated_at) VALUES ('server', 'roster', x'0102', 5)",
            [],
        )
        .unwrap();
        let steps = [MIGRATIONS[0], V2];
        assert_eq!(migrate(&mut conn, &steps).unwrap(), 2);
        let (mime, note): (String, String) = conn
            .query_row("SELECT mime, note FROM media", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((mime.as_str(), note.as_str()), ("image/jpeg", "none"));
        let state: Vec<u8> = conn
            .query_row("SELECT state FROM sync_states", [], |r| r.get(0))
            .unwrap();
        assert_eq!(state, [1, 2]);
        conn.execute("INSERT INTO test_v2 VALUES (1)", []).unwrap();
    }

    #[test]
    fn failed_step_leaves_previous_version_intact() {
        let mut conn = v1_db();
        let broken = Migration {
            version: 2,
            sql: "CREATE TABLE half_done (x); THIS IS NOT SQL;",
        };
        assert!(migrate(&mut conn, &[MIGRATIONS[0], broken]).is_err());
        assert_eq!(user_version(&conn).unwrap(), 1);
        let half: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE name = 'half_done'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(half, 0, "a failed step must roll back entirely");
    }

    #[test]
    fn newer_database_is_refused() {
        let mut conn = v1_db();
        conn.pragma_update(None, "user_version", 99).unwrap();
        let err = migrate(&mut conn, MIGRATIONS).unwrap_err();
        assert!(
            matches!(err, StoreError::TooNew { found: 99, .. }),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .contains("made by a newer Sprig; update the app")
        );
        assert_eq!(user_version(&conn).unwrap(), 99);
    }
}
