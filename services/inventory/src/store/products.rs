//! The catalogue: create (with the product's zero stock row), read by id or sku, list by sku,
//! update the fields a mask selected.

use chrono::{DateTime, Utc};
use ironmesh_outbox::NewEvent;
use ironmesh_runtime::storage::is_unique_violation;
use ironmesh_runtime::with_pool;

use super::{PRODUCT_CHANNEL, Result, Store, placeholders};
use crate::domain::{Product, ProductChanges, ProductFilter};

/// A products row as selected by [`COLUMNS`].
type Row = (
    String,
    String,
    String,
    String,
    i64,
    String,
    bool,
    i64,
    DateTime<Utc>,
    DateTime<Utc>,
);

pub(super) const COLUMNS: &str =
    "id, sku, name, description, price_minor, currency, active, revision, created_at, updated_at";

fn product(row: Row) -> Product {
    Product {
        id: row.0,
        sku: row.1,
        name: row.2,
        description: row.3,
        price_minor: row.4,
        currency: row.5,
        active: row.6,
        revision: row.7,
        created_at: row.8,
        updated_at: row.9,
    }
}

/// One page of ListProducts, and whether more follow.
#[derive(Clone, Debug)]
pub struct ListPage {
    pub products: Vec<Product>,
    pub more: bool,
}

/// `text` as a LIKE pattern matching it anywhere, with LIKE's own characters escaped (`\`).
fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

impl Store {
    /// Stores a new product with zero stock and `event`; false when the sku is taken.
    pub async fn insert_product(&self, p: &Product, event: NewEvent) -> Result<bool> {
        let insert = format!(
            "INSERT INTO products ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        );
        let stock =
            "INSERT INTO stock (product_id, on_hand, reserved, updated_at) VALUES ($1, 0, 0, $2)";
        with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let inserted = sqlx::query(&insert)
                .bind(&p.id)
                .bind(&p.sku)
                .bind(&p.name)
                .bind(&p.description)
                .bind(p.price_minor)
                .bind(&p.currency)
                .bind(p.active)
                .bind(p.revision)
                .bind(p.created_at)
                .bind(p.updated_at)
                .execute(&mut *tx)
                .await;
            match inserted {
                Err(err) if is_unique_violation(&err) => return Ok(false),
                other => other?,
            };
            sqlx::query(stock)
                .bind(&p.id)
                .bind(p.created_at)
                .execute(&mut *tx)
                .await?;
            self.write_event(&mut *tx, event).await?;
            tx.commit().await?;
        });
        self.committed();
        Ok(true)
    }

    pub async fn product(&self, id: &str) -> Result<Option<Product>> {
        let sql = format!("SELECT {COLUMNS} FROM products WHERE id = $1");
        let row = with_pool!(&self.db, pool => sqlx::query_as::<_, Row>(&sql)
            .bind(id)
            .fetch_optional(pool)
            .await)?;
        Ok(row.map(product))
    }

    /// The products with these ids or skus (`column` is `id` or `sku`), in no particular order;
    /// unknown ones are left out.
    pub async fn products_where(&self, column: Column, keys: &[String]) -> Result<Vec<Product>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let column = match column {
            Column::Id => "id",
            Column::Sku => "sku",
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM products WHERE {column} IN ({})",
            placeholders(1, keys.len())
        );
        let rows = with_pool!(&self.db, pool => {
            let mut query = sqlx::query_as::<_, Row>(&sql);
            for key in keys {
                query = query.bind(key);
            }
            query.fetch_all(pool).await
        })?;
        Ok(rows.into_iter().map(product).collect())
    }

    /// Up to `limit` products matching `filter` with a sku after `after`, by sku.
    pub async fn list_products(
        &self,
        filter: &ProductFilter,
        after: &str,
        limit: i64,
    ) -> Result<ListPage> {
        let matching = if filter.query.is_empty() {
            ""
        } else {
            "AND (LOWER(name) LIKE $3 ESCAPE '\\' OR LOWER(sku) LIKE $3 ESCAPE '\\')"
        };
        let limit_at = if filter.query.is_empty() { 3 } else { 4 };
        let sql = format!(
            "SELECT {COLUMNS} FROM products WHERE sku > $1 AND (active OR $2) {matching} \
             ORDER BY sku LIMIT ${limit_at}"
        );
        let pattern = contains_pattern(&filter.query);
        let rows = with_pool!(&self.db, pool => {
            let mut query = sqlx::query_as::<_, Row>(&sql)
                .bind(after)
                .bind(filter.include_inactive);
            if !filter.query.is_empty() {
                query = query.bind(&pattern);
            }
            query.bind(limit + 1).fetch_all(pool).await
        })?;
        let mut products: Vec<Product> = rows.into_iter().map(product).collect();
        let more = products.len() as i64 > limit;
        products.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(ListPage { products, more })
    }

    /// Overwrites the fields `changes` names, bumps the revision, writes the event `event`
    /// builds from the updated product and (on PostgreSQL) notifies [`PRODUCT_CHANNEL`] — all
    /// in one transaction. `None` when there is no such product.
    pub async fn update_product(
        &self,
        id: &str,
        changes: &ProductChanges,
        now: DateTime<Utc>,
        event: impl FnOnce(&Product) -> NewEvent,
    ) -> Result<Option<Product>> {
        let mut sets = Vec::new();
        let mut next = 1;
        let mut set = |column: &str, present: bool| {
            if present {
                sets.push(format!("{column} = ${next}"));
                next += 1;
            }
        };
        set("name", changes.name.is_some());
        set("description", changes.description.is_some());
        set("price_minor", changes.price_minor.is_some());
        set("currency", changes.currency.is_some());
        set("active", changes.active.is_some());
        let sql = format!(
            "UPDATE products SET {}revision = revision + 1, updated_at = ${next} WHERE id = ${} RETURNING {COLUMNS}",
            sets.iter().map(|s| format!("{s}, ")).collect::<String>(),
            next + 1
        );
        let notify = self.postgres();
        let updated = with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let mut query = sqlx::query_as::<_, Row>(&sql);
            if let Some(name) = &changes.name {
                query = query.bind(name);
            }
            if let Some(description) = &changes.description {
                query = query.bind(description);
            }
            if let Some(price) = changes.price_minor {
                query = query.bind(price);
            }
            if let Some(currency) = &changes.currency {
                query = query.bind(currency);
            }
            if let Some(active) = changes.active {
                query = query.bind(active);
            }
            let Some(row) = query.bind(now).bind(id).fetch_optional(&mut *tx).await? else {
                return Ok(None);
            };
            let updated = product(row);
            self.write_event(&mut *tx, event(&updated)).await?;
            if notify {
                // Delivered to every listening replica when (and only if) this commits.
                sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(PRODUCT_CHANNEL)
                    .bind(format!("{}:{}", updated.id, updated.revision))
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            updated
        });
        self.committed();
        Ok(Some(updated))
    }
}

/// Which key [`Store::products_where`] looks products up by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Column {
    Id,
    Sku,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_characters_are_escaped() {
        assert_eq!(contains_pattern("50%_a\\b"), "%50\\%\\_a\\\\b%");
        assert_eq!(contains_pattern(""), "%%");
    }
}
