//! Faceted listings checked against a brute-force count: a random shop of
//! plain products and products with sizes and colours, random queries over
//! every filter, and for each the listing's count and every facet as the
//! test counts them from the whole catalog itself.

use std::collections::{BTreeMap, BTreeSet};

use rand::rngs::StdRng;
use rand::seq::SliceRandom as _;
use rand::{Rng as _, SeedableRng as _};
use serde_json::{json, Value};

use crate::helpers::JsonBody as _;
use crate::helpers::{assert_problem, str_of, TestApp};

const SIZES: [&str; 3] = ["S", "M", "L"];
const COLOURS: [&str; 2] = ["red", "blue"];
const TAGS: [&str; 3] = ["cotton", "sale", "new"];

/// A listing query, as the brute force reads it.
#[derive(Debug, Default, Clone)]
struct Query {
    category: Option<String>,
    min_price: Option<i64>,
    max_price: Option<i64>,
    in_stock: Option<bool>,
    tags: Vec<String>,
    options: BTreeMap<String, Vec<String>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Facet {
    Category,
    Price,
    Stock,
    Tags,
    Options,
}

impl Query {
    fn url(&self) -> String {
        let mut params = vec!["facets=true".to_owned(), "page_size=1".to_owned()];
        if let Some(c) = &self.category {
            params.push(format!("category={c}"));
        }
        if let Some(p) = self.min_price {
            params.push(format!("min_price={p}"));
        }
        if let Some(p) = self.max_price {
            params.push(format!("max_price={p}"));
        }
        if let Some(s) = self.in_stock {
            params.push(format!("in_stock={s}"));
        }
        if !self.tags.is_empty() {
            params.push(format!("tags={}", self.tags.join(",")));
        }
        for (name, values) in &self.options {
            params.push(format!("option.{name}={}", values.join(",")));
        }
        format!("/api/v1/products/?{}", params.join("&"))
    }

    /// Whether `p` holds every option filter but `except`'s: for each, one
    /// of its active variants has one of the values.
    fn options_match(&self, p: &Value, except: Option<&str>) -> bool {
        self.options.iter().all(|(name, values)| {
            Some(name.as_str()) == except
                || active_variants(p).any(|v| {
                    v["options"][name]
                        .as_str()
                        .is_some_and(|x| values.iter().any(|w| w == x))
                })
        })
    }

    /// Whether `p` holds every filter but facet `except`'s.
    fn matches(&self, p: &Value, except: Option<Facet>) -> bool {
        let skip = |f| except == Some(f);
        let price = p["price"].as_i64().unwrap_or_default();
        let stock = p["stock"].as_i64().unwrap_or_default();
        let tags: Vec<&str> = p["tags"]
            .as_array()
            .map(|t| t.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        (skip(Facet::Category)
            || self
                .category
                .as_deref()
                .is_none_or(|c| p["category_id"] == c))
            && (skip(Facet::Price)
                || (self.min_price.is_none_or(|m| price >= m)
                    && self.max_price.is_none_or(|m| price <= m)))
            && (skip(Facet::Stock) || self.in_stock.is_none_or(|s| (stock > 0) == s))
            && (skip(Facet::Tags) || self.tags.iter().all(|t| tags.contains(&t.as_str())))
            && (skip(Facet::Options) || self.options_match(p, None))
    }

    /// The facets, counted one product at a time.
    fn expected(&self, all: &[Value]) -> (usize, Value) {
        let count = all.iter().filter(|p| self.matches(p, None)).count();
        let mut categories: BTreeMap<String, i64> = BTreeMap::new();
        let mut tags: BTreeMap<String, i64> = BTreeMap::new();
        let mut options: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
        let (mut min, mut max): (Option<i64>, Option<i64>) = (None, None);
        let (mut with, mut without) = (0, 0);
        for p in all {
            if self.matches(p, Some(Facet::Category)) {
                if let Some(c) = p["category_id"].as_str() {
                    *categories.entry(c.to_owned()).or_default() += 1;
                }
            }
            if self.matches(p, Some(Facet::Tags)) {
                for t in p["tags"].as_array().into_iter().flatten() {
                    *tags.entry(str_of(t)).or_default() += 1;
                }
            }
            if self.matches(p, Some(Facet::Options)) {
                for v in active_variants(p) {
                    for (name, value) in v["options"].as_object().into_iter().flatten() {
                        if self.options_match(p, Some(name)) {
                            options
                                .entry(name.clone())
                                .or_default()
                                .entry(str_of(value))
                                .or_default()
                                .insert(str_of(&p["id"]));
                        }
                    }
                }
            }
            if self.matches(p, Some(Facet::Price)) {
                let price = p["price"].as_i64();
                min = match (min, price) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                max = max.max(price);
            }
            if self.matches(p, Some(Facet::Stock)) {
                if p["stock"].as_i64() > Some(0) {
                    with += 1;
                } else {
                    without += 1;
                }
            }
        }
        let options: BTreeMap<String, BTreeMap<String, usize>> = options
            .into_iter()
            .map(|(k, values)| {
                (
                    k,
                    values.into_iter().map(|(v, ids)| (v, ids.len())).collect(),
                )
            })
            .collect();
        let facets = json!({"categories": categories, "tags": tags, "options": options,
            "price": {"min": min, "max": max}, "in_stock": {"true": with, "false": without}});
        (count, facets)
    }
}

fn active_variants(p: &Value) -> impl Iterator<Item = &Value> {
    p["variants"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["is_active"] == true)
}

/// The served facets in the brute force's shape (maps instead of lists).
fn as_maps(facets: &Value) -> Value {
    let counts = |list: &Value, key: &str| -> BTreeMap<String, i64> {
        list.as_array()
            .into_iter()
            .flatten()
            .map(|e| (str_of(&e[key]), e["count"].as_i64().unwrap_or_default()))
            .collect()
    };
    let options: BTreeMap<String, BTreeMap<String, i64>> = facets["options"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, list)| (k.clone(), counts(list, "value")))
        .collect();
    json!({"categories": counts(&facets["categories"], "id"), "tags": counts(&facets["tags"], "value"),
        "options": options, "price": facets["price"], "in_stock": facets["in_stock"]})
}

#[tokio::test]
async fn facets_match_a_brute_force_count_for_random_queries() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let mut rng = StdRng::seed_from_u64(20261202);
    let categories = [
        str_of(&app.category(&admin, json!({"name": "Tops"})).await["id"]),
        str_of(&app.category(&admin, json!({"name": "Bottoms"})).await["id"]),
    ];
    for n in 0..24 {
        let category = match rng.gen_range(0..3) {
            2 => Value::Null,
            c => json!(categories[c]),
        };
        let tags: Vec<&str> = TAGS.iter().copied().filter(|_| rng.gen_bool(0.4)).collect();
        let mut body = json!({"name": format!("Item {n}"), "currency": "EUR", "category_id": category,
            "tags": tags, "is_active": rng.gen_bool(0.9)});
        if rng.gen_bool(0.3) {
            body["sku"] = json!(format!("PLAIN-{n}"));
            body["price"] = json!(rng.gen_range(1..50) * 100);
            body["stock"] = json!(rng.gen_range(0..3));
        } else {
            let mut combos: Vec<(&str, &str)> = SIZES
                .iter()
                .flat_map(|s| COLOURS.iter().map(move |c| (*s, *c)))
                .collect();
            combos.shuffle(&mut rng);
            combos.truncate(rng.gen_range(1..=4));
            let variants: Vec<Value> = combos
                .iter()
                .map(|(s, c)| {
                    json!({"sku": format!("V-{n}-{s}-{c}"), "options": {"size": s, "colour": c},
                        "price": rng.gen_range(1..50) * 100, "stock": rng.gen_range(0..3),
                        "is_active": rng.gen_bool(0.85)})
                })
                .collect();
            body["options"] =
                json!([{"name": "size", "values": SIZES}, {"name": "colour", "values": COLOURS}]);
            body["variants"] = json!(variants);
        }
        let r = app.post("/api/v1/products/", Some(&admin), &body).await;
        assert_eq!(r.status(), 201, "{body}");
    }
    let all: Value = app
        .get("/api/v1/products/?page_size=100", None)
        .await
        .body_json()
        .await;
    let all = all["results"].as_array().expect("results").clone();
    assert!(all.len() >= 15, "a shop to count over");

    let mut queries = vec![Query::default()];
    for _ in 0..40 {
        let mut q = Query::default();
        if rng.gen_bool(0.3) {
            q.category = Some(categories[rng.gen_range(0..2)].clone());
        }
        if rng.gen_bool(0.3) {
            q.min_price = Some(rng.gen_range(0..30) * 100);
        }
        if rng.gen_bool(0.3) {
            q.max_price = Some(rng.gen_range(30..60) * 100);
        }
        if rng.gen_bool(0.3) {
            q.in_stock = Some(rng.gen_bool(0.7));
        }
        if rng.gen_bool(0.3) {
            q.tags = vec![TAGS[rng.gen_range(0..3)].to_owned()];
        }
        if rng.gen_bool(0.5) {
            let mut sizes: Vec<String> = SIZES
                .iter()
                .filter(|_| rng.gen_bool(0.5))
                .map(|s| (*s).to_owned())
                .collect();
            if sizes.is_empty() {
                sizes.push("M".into());
            }
            q.options.insert("size".into(), sizes);
        }
        if rng.gen_bool(0.4) {
            q.options.insert(
                "colour".into(),
                vec![COLOURS[rng.gen_range(0..2)].to_owned()],
            );
        }
        queries.push(q);
    }
    for q in &queries {
        let r = app.get(&q.url(), None).await;
        assert_eq!(r.status(), 200, "{}", q.url());
        let page: Value = r.body_json().await;
        let (count, facets) = q.expected(&all);
        assert_eq!(page["count"], count, "{}", q.url());
        assert_eq!(as_maps(&page["facets"]), facets, "{}", q.url());
        // A search that every product matches: counted by the database
        // instead of the in-memory index, and to the same figures.
        let searched = format!("{}&q=item", q.url());
        let page: Value = app.get(&searched, None).await.body_json().await;
        assert_eq!(page["count"], count, "{searched}");
        assert_eq!(as_maps(&page["facets"]), facets, "{searched}");
    }

    // Facets are listed most first; the category names come along.
    let page: Value = app
        .get("/api/v1/products/?facets=true", None)
        .await
        .body_json()
        .await;
    let counts: Vec<i64> = page["facets"]["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .filter_map(|t| t["count"].as_i64())
        .collect();
    assert!(counts.windows(2).all(|w| w[0] >= w[1]), "{counts:?}");
    for c in page["facets"]["categories"].as_array().expect("categories") {
        assert!(c["name"] == "Tops" || c["name"] == "Bottoms", "{c}");
        assert!(c["slug"].is_string());
    }
    // Without `facets`, none are computed.
    let plain: Value = app.get("/api/v1/products/", None).await.body_json().await;
    assert!(plain.get("facets").is_none());
}

#[tokio::test]
async fn bad_facet_and_option_parameters_are_400_naming_them() {
    let app = TestApp::spawn().await;
    for (query, field) in [
        ("facets=maybe", "facets"),
        ("option.size=", "option.size"),
        ("option.=M", "option."),
        ("option.a=1&option.b=1&option.c=1&option.d=1", "option"),
    ] {
        let r = app.get(&format!("/api/v1/products/?{query}"), None).await;
        let problem = assert_problem(r, 400, "invalid_query").await;
        let fields: Vec<String> = problem["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .map(|e| str_of(&e["field"]))
            .collect();
        assert_eq!(fields, [field], "{query}");
    }
    let long = "x".repeat(60);
    let r = app
        .get(&format!("/api/v1/products/?option.size={long}"), None)
        .await;
    assert_problem(r, 400, "invalid_query").await;
}

/// The facets of one instance follow a write made through another: the
/// in-memory index is valid for one cache generation only.
#[tokio::test]
async fn facets_follow_writes_made_on_another_instance() {
    let a = TestApp::spawn().await;
    let b = TestApp::spawn_beside(&a.settings).await;
    let (_, admin) = a.admin().await;
    let body = json!({"name": "Tee", "currency": "EUR", "tags": ["cotton"],
        "options": [{"name": "size", "values": ["S", "M"]}],
        "variants": [{"sku": "TEE-S", "options": {"size": "S"}, "price": 900, "stock": 2},
                     {"sku": "TEE-M", "options": {"size": "M"}, "price": 1100, "stock": 0}]});
    let r = a.post("/api/v1/products/", Some(&admin), &body).await;
    assert_eq!(r.status(), 201);
    let tee: Value = r.body_json().await;
    let url = "/api/v1/products/?facets=true&option.size=M";
    let facets = |page: Value| page["facets"].clone();
    let before = facets(b.get(url, None).await.body_json().await);
    assert_eq!(before["in_stock"], json!({"true": 1, "false": 0}));
    assert_eq!(before["tags"], json!([{"value": "cotton", "count": 1}]));

    assert_eq!(before["price"], json!({"min": 900, "max": 900}));
    assert_eq!(before["options"]["size"].as_array().map(Vec::len), Some(2));

    // Through instance a: S (the only size in stock) is switched off, and
    // the product gets a tag.
    let s = tee["variants"]
        .as_array()
        .expect("variants")
        .iter()
        .find(|v| v["sku"] == "TEE-S")
        .expect("S")
        .clone();
    let id = str_of(&tee["id"]);
    let path = |v: &Value| format!("/api/v1/products/{id}/variants/{}/", str_of(&v["id"]));
    let r = a
        .patch(&path(&s), Some(&admin), &json!({"is_active": false}))
        .await;
    assert_eq!(r.status(), 200);
    let r = a
        .patch(
            &format!("/api/v1/products/{id}/"),
            Some(&admin),
            &json!({"tags": ["cotton", "sale"]}),
        )
        .await;
    assert_eq!(r.status(), 200);

    let after = facets(b.get(url, None).await.body_json().await);
    assert_eq!(after["in_stock"], json!({"true": 0, "false": 1}));
    assert_eq!(after["price"], json!({"min": 1100, "max": 1100}));
    assert_eq!(
        after["options"]["size"],
        json!([{"value": "M", "count": 1}])
    );
    let tags: Vec<String> = after["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .map(|t| str_of(&t["value"]))
        .collect();
    assert_eq!(tags, ["cotton", "sale"]);
}
