//! The catalogue: create, read through the cache, list with filter-bound page tokens, update
//! by mask (and refresh the cache before answering).

use ironmesh_runtime::paging;
use ironmesh_runtime::validation::Violations;

use super::{Inventory, Result};
use crate::domain::product::MAX_QUERY_CHARS;
use crate::domain::{
    self, Caller, InventoryError, NewProduct, Product, ProductChanges, ProductFilter,
};
use crate::events;
use crate::store::Column;

/// ListProducts' page size: default and most.
const DEFAULT_PAGE: i64 = 50;
const MAX_PAGE: i64 = 200;
/// Most names one BatchGetProducts may carry (ids and skus together).
pub const MAX_BATCH: usize = 100;

/// A ListProducts page.
#[derive(Clone, Debug)]
pub struct ProductPage {
    pub products: Vec<Product>,
    pub next_page_token: String,
}

impl Inventory {
    pub async fn create_product(&self, caller: &Caller, new: NewProduct) -> Result<Product> {
        new.validate()?;
        let now = domain::now();
        let product = Product {
            id: domain::new_id(),
            sku: new.sku,
            name: new.name,
            description: new.description,
            price_minor: new.price_minor,
            currency: new.currency,
            active: new.active,
            revision: 1,
            created_at: now,
            updated_at: now,
        };
        let event = events::product(events::PRODUCT_CREATED, &caller.actor, &product);
        if !self.store.insert_product(&product, event).await? {
            return Err(InventoryError::SkuTaken);
        }
        Ok(product)
    }

    /// One product, inactive ones too, through the cache.
    pub async fn product(&self, id: &str) -> Result<Product> {
        domain::require_id("product_id", id)?;
        let ids = [id.to_owned()];
        let (mut cached, ticket) = self.cache.lookup(&ids).await;
        if let Some(product) = cached.pop() {
            return Ok(product);
        }
        let product = self
            .store
            .product(id)
            .await?
            .ok_or(InventoryError::NotFound("product"))?;
        self.cache
            .fill(ticket, std::slice::from_ref(&product))
            .await;
        Ok(product)
    }

    /// The products named by `ids` (through the cache) and `skus`, each once; unknown names
    /// are left out.
    pub async fn products(&self, ids: &[String], skus: &[String]) -> Result<Vec<Product>> {
        let mut violations = Violations::default();
        if ids.is_empty() && skus.is_empty() {
            violations.add("product_ids", "name at least one product (by id or sku)");
        } else if ids.len() + skus.len() > MAX_BATCH {
            violations.add("product_ids", "at most 100 names (ids and skus together)");
        }
        for (i, id) in ids.iter().enumerate() {
            domain::check_id(&mut violations, &format!("product_ids[{i}]"), id);
        }
        for (i, sku) in skus.iter().enumerate() {
            domain::product::check_sku(&mut violations, &format!("skus[{i}]"), sku);
        }
        violations.into_result()?;

        let mut wanted: Vec<String> = ids.to_vec();
        wanted.sort_unstable();
        wanted.dedup();
        let (mut found, ticket) = self.cache.lookup(&wanted).await;
        let missing: Vec<String> = wanted
            .into_iter()
            .filter(|id| !found.iter().any(|p| &p.id == id))
            .collect();
        let read = self.store.products_where(Column::Id, &missing).await?;
        self.cache.fill(ticket, &read).await;
        found.extend(read);
        let by_sku: Vec<String> = skus
            .iter()
            .filter(|sku| !found.iter().any(|p| &p.sku == *sku))
            .cloned()
            .collect();
        for product in self.store.products_where(Column::Sku, &by_sku).await? {
            if !found.iter().any(|p| p.id == product.id) {
                found.push(product);
            }
        }
        Ok(found)
    }

    /// A page of ListProducts. `include_inactive` is honoured for operators only.
    pub async fn list_products(
        &self,
        caller: &Caller,
        page_size: i32,
        page_token: &str,
        query: &str,
        include_inactive: bool,
    ) -> Result<ProductPage> {
        let mut violations = Violations::default();
        let limit = paging::page_size(page_size, DEFAULT_PAGE, MAX_PAGE)
            .map_err(|v| violations.extend(v))
            .unwrap_or(DEFAULT_PAGE);
        if query.chars().count() > MAX_QUERY_CHARS {
            violations.add("query", "at most 200 characters");
        }
        // The token is bound to the other fields as the caller sent them.
        let binding = format!("query={query}\u{0}include_inactive={include_inactive}");
        let after = paging::decode_token(page_token, &binding)
            .map_err(|v| violations.extend(v))
            .unwrap_or_default();
        violations.into_result()?;
        let filter = ProductFilter {
            query: query.to_lowercase(),
            include_inactive: include_inactive && caller.operator,
        };
        let page = self
            .store
            .list_products(&filter, after.as_deref().unwrap_or(""), limit)
            .await?;
        let next_page_token = match page.products.last() {
            Some(last) if page.more => paging::encode_token(&last.sku, &binding),
            _ => String::new(),
        };
        Ok(ProductPage {
            products: page.products,
            next_page_token,
        })
    }

    /// Overwrites what `mask` selects from `values`; the cache holds the new row (or none) on
    /// every replica by the time this returns.
    pub async fn update_product(
        &self,
        caller: &Caller,
        id: &str,
        mask: Option<&[String]>,
        values: NewProduct,
    ) -> Result<Product> {
        let mut violations = Violations::default();
        domain::check_id(&mut violations, "product.product_id", id);
        let changes = ProductChanges::select(mask, &values).map_err(|v| {
            violations.extend(v);
        });
        violations.into_result()?;
        let changes = changes.expect("violations were empty");
        if changes.is_empty() {
            // An unset mask selects only non-default values: setting one back to its default
            // (`active: false`, an empty description) needs the field named in the mask.
            return Err(InventoryError::invalid(
                "update_mask",
                "nothing to update: set a field, or name the fields to overwrite (a default value such as active=false must be named)",
            ));
        }
        let actor = caller.actor.clone();
        let updated = self
            .store
            .update_product(id, &changes, domain::now(), move |p| {
                events::product(events::PRODUCT_UPDATED, &actor, p)
            })
            .await?
            .ok_or(InventoryError::NotFound("product"))?;
        self.cache.updated(&updated).await;
        Ok(updated)
    }
}
