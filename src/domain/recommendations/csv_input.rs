//! Reading interactions (and optionally products) from CSV files with a
//! header, for offline evaluation on any data set.

use std::collections::HashMap;
use std::io::Read;

use super::data::{Dataset, Order};
use super::features::product_features;

/// Columns the interactions file must have.
pub const REQUIRED: [&str; 4] = ["user_id", "order_id", "order_number", "product_id"];

fn columns(headers: &csv::StringRecord, wanted: &[&str]) -> Result<Vec<usize>, String> {
    wanted
        .iter()
        .map(|name| {
            headers
                .iter()
                .position(|h| h.trim().eq_ignore_ascii_case(name))
                .ok_or_else(|| {
                    format!(
                        "the file has no `{name}` column (it has: {})",
                        headers.iter().collect::<Vec<_>>().join(", ")
                    )
                })
        })
        .collect()
}

/// Reads interactions: one row per purchased line. Rows of one
/// `(user_id, order_id)` form one order, placed at `order_number`.
pub fn read_interactions(input: impl Read, data: &mut Dataset) -> Result<usize, String> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(input);
    let headers = reader.headers().map_err(|e| e.to_string())?.clone();
    let cols = columns(&headers, &REQUIRED)?;
    let mut orders: HashMap<(usize, String), usize> = HashMap::new();
    let mut rows = 0;
    for (line, record) in reader.records().enumerate() {
        let record = record.map_err(|e| format!("line {}: {e}", line + 2))?;
        let field = |c: usize| record.get(cols[c]).unwrap_or("").trim();
        let seq: f64 = field(2).parse().map_err(|_| {
            format!(
                "line {}: order_number {:?} is not a number",
                line + 2,
                field(2)
            )
        })?;
        let user = data.user(field(0));
        let item = data.item(field(3));
        let key = (user, field(1).to_owned());
        let index = *orders.entry(key).or_insert_with(|| {
            data.orders.push(Order {
                user,
                seq,
                items: Vec::new(),
            });
            data.orders.len() - 1
        });
        let order = &mut data.orders[index];
        if !order.items.contains(&item) {
            order.items.push(item);
        }
        rows += 1;
    }
    Ok(rows)
}

/// Reads product features: `product_id` and any of `category` (a path with
/// `/` or `>` between levels), `tags` (separated by `|`), `price` (minor
/// units). Products not in the interactions are added (they can be
/// recommended but were never bought).
pub fn read_products(input: impl Read, data: &mut Dataset) -> Result<usize, String> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(input);
    let headers = reader.headers().map_err(|e| e.to_string())?.clone();
    let id = columns(&headers, &["product_id"])?[0];
    let find = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(name))
    };
    let (category, tags, price) = (find("category"), find("tags"), find("price"));
    let mut rows = 0;
    for (line, record) in reader.records().enumerate() {
        let record = record.map_err(|e| format!("line {}: {e}", line + 2))?;
        let get = |c: Option<usize>| c.and_then(|c| record.get(c)).unwrap_or("").trim();
        let item = data.item(get(Some(id)));
        let path: Vec<String> = get(category)
            .split(['/', '>'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        let tag_list: Vec<String> = get(tags)
            .split('|')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        let price_minor = get(price).parse::<f64>().ok().map(|p| p as i64);
        data.features[item] = product_features(&path, &tag_list, price_minor);
        rows += 1;
        let _ = line;
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_group_into_orders_and_extra_columns_are_ignored() {
        let csv = "order_id,user_id,order_number,product_id,extra\n\
                   o1,u1,1,p1,x\no1,u1,1,p2,x\no2,u1,2,p1,x\no3,u2,1,p3,x\n";
        let mut d = Dataset::new();
        assert_eq!(read_interactions(csv.as_bytes(), &mut d), Ok(4));
        assert_eq!(d.orders.len(), 3);
        assert_eq!(d.orders[0].items, vec![0, 1]);
        assert_eq!((d.user_ids.len(), d.item_ids.len()), (2, 3));
    }

    #[test]
    fn missing_columns_and_bad_numbers_say_what_to_fix() {
        let mut d = Dataset::new();
        let err =
            read_interactions("user_id,product_id\nu,p\n".as_bytes(), &mut d).expect_err("refused");
        assert!(err.contains("order_id"), "{err}");
        let err = read_interactions(
            "user_id,order_id,order_number,product_id\nu,o,first,p\n".as_bytes(),
            &mut d,
        )
        .expect_err("refused");
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn products_bring_features() {
        let mut d = Dataset::new();
        let csv = "product_id,category,tags,price\np1,outdoor/tents,green|light,12000\n";
        assert_eq!(read_products(csv.as_bytes(), &mut d), Ok(1));
        assert!(d.has_features());
        assert_eq!(d.features[0][1], ("cat:outdoor/tents".to_owned(), 2.0));
    }
}
