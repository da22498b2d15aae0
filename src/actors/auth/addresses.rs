//! The work behind the address book messages. Every change locks the
//! user's row first, so the 20-address limit and the switch of a default
//! from one address to another are decided on a settled book; the
//! database's partial unique indexes back the one-default rule.

use uuid::Uuid;

use super::error::AuthError;
use super::handlers::AuthService;
use super::messages::*;
use crate::domain::auth::address_book::MAX_ADDRESSES;
use crate::store::addresses::{self as store, AddressRow};

impl From<AddressRow> for AddressView {
    fn from(r: AddressRow) -> Self {
        AddressView {
            id: r.id,
            name: r.name,
            line1: r.line1,
            line2: r.line2,
            city: r.city,
            region: r.region,
            postal_code: r.postal_code,
            country: r.country,
            phone: r.phone,
            is_default_shipping: r.is_default_shipping,
            is_default_billing: r.is_default_billing,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

impl AuthService {
    pub async fn list_addresses(&self, msg: ListAddresses) -> Result<Vec<AddressView>, AuthError> {
        let rows = store::list(&self.pool, msg.user_id).await?;
        Ok(rows.into_iter().map(AddressView::from).collect())
    }

    pub async fn get_address(&self, msg: GetAddress) -> Result<AddressView, AuthError> {
        let mut conn = self.pool.acquire().await?;
        store::get(&mut conn, msg.user_id, msg.id)
            .await?
            .map(AddressView::from)
            .ok_or(AuthError::AddressNotFound)
    }

    pub async fn create_address(&self, msg: CreateAddress) -> Result<AddressView, AuthError> {
        let mut tx = self.pool.begin().await?;
        if !store::lock_book(&mut tx, msg.user_id).await? {
            return Err(AuthError::InvalidToken);
        }
        let held = store::count(&mut tx, msg.user_id).await?;
        if held >= MAX_ADDRESSES {
            return Err(AuthError::AddressLimit);
        }
        let address = msg
            .draft
            .validate(held == 0)
            .map_err(AuthError::Validation)?;
        let id = Uuid::new_v4();
        store::clear_defaults(&mut tx, msg.user_id, id, &address).await?;
        let row = store::insert(&mut tx, id, msg.user_id, &address).await?;
        tx.commit().await?;
        Ok(row.into())
    }

    pub async fn update_address(&self, msg: UpdateAddress) -> Result<AddressView, AuthError> {
        let mut tx = self.pool.begin().await?;
        if !store::lock_book(&mut tx, msg.user_id).await? {
            return Err(AuthError::InvalidToken);
        }
        let current = store::get(&mut tx, msg.user_id, msg.id)
            .await?
            .ok_or(AuthError::AddressNotFound)?;
        let next = msg
            .patch
            .apply(&current.book())
            .map_err(AuthError::Validation)?;
        store::clear_defaults(&mut tx, msg.user_id, msg.id, &next).await?;
        let row = store::update(&mut tx, msg.id, &next).await?;
        tx.commit().await?;
        Ok(row.into())
    }

    pub async fn delete_address(&self, msg: DeleteAddress) -> Result<(), AuthError> {
        match store::delete(&self.pool, msg.user_id, msg.id).await? {
            true => Ok(()),
            false => Err(AuthError::AddressNotFound),
        }
    }
}
