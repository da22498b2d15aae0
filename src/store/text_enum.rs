//! Status columns as typed enums. The columns are `text` (with a CHECK
//! constraint naming the values); a domain enum reads and writes itself
//! through its own `parse` and `as_str`, so no handler parses a string
//! back and no status is ever written misspelt. The domain stays free of
//! sqlx: the impls live here.

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgTypeInfo, PgValueRef};
use sqlx::{Decode, Encode, Postgres, Type};

use crate::domain::events::EventType;
use crate::domain::orders::events::OrderEventKind;
use crate::domain::orders::fulfilment::FulfilmentStatus;
use crate::domain::orders::returns::ReturnStatus;
use crate::domain::orders::status::OrderStatus;
use crate::domain::payments::queue::{JobKind, PaymentNotice};
use crate::domain::payments::refund::RefundStatus;
use crate::domain::payments::status::PaymentStatus;

macro_rules! text_enum {
    ($t:ty, $what:literal) => {
        impl Type<Postgres> for $t {
            fn type_info() -> PgTypeInfo {
                <&str as Type<Postgres>>::type_info()
            }

            fn compatible(ty: &PgTypeInfo) -> bool {
                <&str as Type<Postgres>>::compatible(ty)
            }
        }

        impl<'r> Decode<'r, Postgres> for $t {
            fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
                let text = <&str as Decode<Postgres>>::decode(value)?;
                <$t>::parse(text).ok_or_else(|| format!("unknown {} {text:?}", $what).into())
            }
        }

        impl Encode<'_, Postgres> for $t {
            fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
                <&str as Encode<Postgres>>::encode_by_ref(&self.as_str(), buf)
            }
        }
    };
}

text_enum!(OrderStatus, "order status");
text_enum!(OrderEventKind, "order event kind");
text_enum!(FulfilmentStatus, "fulfilment status");
text_enum!(ReturnStatus, "return status");
text_enum!(PaymentStatus, "payment status");
text_enum!(JobKind, "payment job kind");
text_enum!(PaymentNotice, "payment notice");
text_enum!(RefundStatus, "refund status");
text_enum!(EventType, "event type");
