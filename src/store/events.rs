//! SQL of the public event outbox (`event_outbox`), the same table in every
//! domain database that produces events; each function takes that domain's
//! pool or transaction.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::events::{Event, EventType, Sink};

/// An outbox row as read back.
#[derive(Debug, Clone, sqlx::FromRow)]
struct EventRow {
    id: Uuid,
    #[sqlx(rename = "type")]
    event_type: EventType,
    subject: String,
    data: sqlx::types::Json<serde_json::Value>,
    occurred_at: DateTime<Utc>,
}

impl From<EventRow> for Event {
    fn from(row: EventRow) -> Self {
        Event {
            id: row.id,
            event_type: row.event_type,
            subject: row.subject,
            data: row.data.0,
            time: row.occurred_at,
        }
    }
}

/// Appends `event` in the caller's transaction: it exists only if the
/// change it describes commits.
pub async fn append(conn: &mut PgConnection, event: &Event) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO event_outbox (id, type, subject, data, occurred_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(event.id)
    .bind(event.event_type)
    .bind(&event.subject)
    .bind(sqlx::types::Json(&event.data))
    .bind(event.time)
    .execute(conn)
    .await?;
    Ok(())
}

/// Appends every event of `events` in the caller's transaction.
pub async fn append_all(conn: &mut PgConnection, events: &[Event]) -> Result<(), sqlx::Error> {
    for event in events {
        append(&mut *conn, event).await?;
    }
    Ok(())
}

/// Up to `limit` events `sink` has not taken, oldest first.
pub async fn pending(pool: &PgPool, sink: Sink, limit: i64) -> Result<Vec<Event>, sqlx::Error> {
    let sql = format!(
        "SELECT id, type, subject, data, occurred_at FROM event_outbox \
         WHERE {} IS NULL ORDER BY seq LIMIT $1",
        sink.column()
    );
    let rows: Vec<EventRow> = sqlx::query_as(&sql).bind(limit).fetch_all(pool).await?;
    Ok(rows.into_iter().map(Event::from).collect())
}

/// Records that `sink` has taken the events `ids` (after its own
/// acknowledgement: a delivery row written, a broker confirm). The commit
/// does not wait for the WAL flush: losing the mark in a database crash
/// only hands the events on again, which at-least-once delivery allows.
pub async fn mark_taken(pool: &PgPool, sink: Sink, ids: &[Uuid]) -> Result<u64, sqlx::Error> {
    let sql = format!(
        "UPDATE event_outbox SET {0} = now() WHERE id = ANY($1) AND {0} IS NULL",
        sink.column()
    );
    let mut tx = pool.begin().await?;
    super::database::commit_without_flush(&mut tx).await?;
    let taken = sqlx::query(&sql)
        .bind(ids)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    tx.commit().await?;
    Ok(taken)
}

/// Deletes events older than `before` that every sink in `sinks` has taken.
pub async fn purge(
    pool: &PgPool,
    sinks: &[Sink],
    before: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    let mut sql = String::from("DELETE FROM event_outbox WHERE occurred_at < $1");
    for sink in sinks {
        sql.push_str(&format!(" AND {} IS NOT NULL", sink.column()));
    }
    Ok(sqlx::query(&sql)
        .bind(before)
        .execute(pool)
        .await?
        .rows_affected())
}
