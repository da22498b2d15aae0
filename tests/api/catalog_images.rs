//! Product images: uploaded as multipart, recognised by content and
//! decoded whole, stored in the local media store, served with their type,
//! entity tag and a long cache lifetime, changed, deleted, and every bad
//! upload a clear 4xx.

use std::io::Cursor;

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::JsonBody as _;
use crate::helpers::{assert_problem, str_of, TestApp};

const BOUNDARY: &str = "emporium-test-boundary-7c1f";

/// One part of a multipart body: its name, an optional file name and
/// content type, and its bytes.
struct Part<'a> {
    name: &'a str,
    file: Option<(&'a str, &'a str)>,
    data: Vec<u8>,
}

fn text<'a>(name: &'a str, value: &str) -> Part<'a> {
    Part {
        name,
        file: None,
        data: value.as_bytes().to_vec(),
    }
}

fn file<'a>(filename: &'a str, content_type: &'a str, data: Vec<u8>) -> Part<'a> {
    Part {
        name: "file",
        file: Some((filename, content_type)),
        data,
    }
}

fn multipart(parts: &[Part<'_>]) -> Vec<u8> {
    let mut body = Vec::new();
    for part in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        match part.file {
            Some((filename, content_type)) => body.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"{}\"; filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n",
                    part.name
                )
                .as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{}\"\r\n\r\n", part.name).as_bytes(),
            ),
        }
        body.extend_from_slice(&part.data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

fn encoded(width: u32, height: u32, format: image::ImageFormat) -> Vec<u8> {
    let mut out = Vec::new();
    let picture = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x * 7 % 256) as u8, (y * 13 % 256) as u8, 90])
    });
    image::DynamicImage::ImageRgb8(picture)
        .write_to(&mut Cursor::new(&mut out), format)
        .expect("encoded");
    out
}

async fn upload(
    app: &TestApp,
    token: Option<&str>,
    product: &Value,
    parts: &[Part<'_>],
) -> reqwest::Response {
    app.request(
        Method::POST,
        &format!("/api/v1/products/{}/images/", str_of(&product["id"])),
        token,
    )
    .header(
        "content-type",
        format!("multipart/form-data; boundary={BOUNDARY}"),
    )
    .body(multipart(parts))
    .send()
    .await
    .expect("upload")
}

#[tokio::test]
async fn an_image_is_stored_served_as_immutable_changed_and_deleted() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin().await;
    let product = app.product(&admin, json!({})).await;
    let png = encoded(64, 48, image::ImageFormat::Png);
    let variant = str_of(&product["variants"][0]["id"]);
    let r = upload(
        &app,
        Some(&admin),
        &product,
        &[
            file("front.png", "image/png", png.clone()),
            text("alt", "  The front  "),
            text("variant_ids", &variant),
        ],
    )
    .await;
    assert_eq!(r.status(), 201);
    let image: Value = r.body_json().await;
    assert_eq!(
        (image["width"].as_i64(), image["height"].as_i64()),
        (Some(64), Some(48))
    );
    assert_eq!(image["content_type"], "image/png");
    assert_eq!(image["bytes"], png.len());
    assert_eq!(image["alt"], "The front");
    assert_eq!(image["variant_ids"], json!([variant]));
    let url = str_of(&image["url"]);
    assert!(
        url.starts_with("/media/products/") && url.ends_with(".png"),
        "{url}"
    );

    // Served as stored, with its type, tag and a year of caching.
    let r = app.client.get(app.url(&url)).send().await.expect("media");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/png");
    assert!(r.headers()["cache-control"]
        .to_str()
        .expect("ascii")
        .contains("immutable"));
    let etag = r.headers()["etag"].to_str().expect("ascii").to_owned();
    assert_eq!(r.bytes().await.expect("bytes").to_vec(), png);
    let r = app
        .client
        .get(app.url(&url))
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("media");
    assert_eq!(r.status(), 304);

    // JPEG, WebP and GIF are taken too; the product lists its images by
    // position.
    for (format, name) in [
        (image::ImageFormat::Jpeg, "side.jpg"),
        (image::ImageFormat::WebP, "back.webp"),
        (image::ImageFormat::Gif, "spin.gif"),
    ] {
        let r = upload(
            &app,
            Some(&admin),
            &product,
            &[file(
                name,
                "application/octet-stream",
                encoded(20, 10, format),
            )],
        )
        .await;
        assert_eq!(r.status(), 201, "{name}");
    }
    let path = format!("/api/v1/products/{}/", str_of(&product["id"]));
    let now: Value = app.get(&path, None).await.body_json().await;
    let types: Vec<&str> = now["images"]
        .as_array()
        .expect("images")
        .iter()
        .filter_map(|i| i["content_type"].as_str())
        .collect();
    assert_eq!(
        types,
        ["image/png", "image/jpeg", "image/webp", "image/gif"]
    );

    // Moved last, its variants cleared; an empty or bad change is refused.
    let image_path = format!(
        "/api/v1/products/{}/images/{}/",
        str_of(&product["id"]),
        str_of(&image["id"])
    );
    let r = app
        .patch(
            &image_path,
            Some(&admin),
            &json!({"position": 9, "variant_ids": [], "alt": "Front"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let now: Value = app.get(&path, None).await.body_json().await;
    assert_eq!(now["images"][3]["id"], image["id"]);
    assert_eq!(now["images"][3]["variant_ids"], json!([]));
    assert_problem(
        app.patch(&image_path, Some(&admin), &json!({})).await,
        422,
        "validation_error",
    )
    .await;
    assert_problem(
        app.patch(&image_path, Some(&admin), &json!({"position": -1}))
            .await,
        422,
        "validation_error",
    )
    .await;
    let stranger = json!({"variant_ids": [uuid::Uuid::new_v4()]});
    assert_problem(
        app.patch(&image_path, Some(&admin), &stranger).await,
        422,
        "validation_error",
    )
    .await;

    // Deleted: the row and the file.
    assert_eq!(app.delete(&image_path, Some(&admin)).await.status(), 204);
    assert_eq!(
        app.client
            .get(app.url(&url))
            .send()
            .await
            .expect("media")
            .status(),
        404
    );
    assert_problem(
        app.delete(&image_path, Some(&admin)).await,
        404,
        "not_found",
    )
    .await;
    // Deleting the product takes the other files with it.
    let other = str_of(&now["images"][0]["url"]);
    assert_eq!(app.delete(&path, Some(&admin)).await.status(), 204);
    assert_eq!(
        app.client
            .get(app.url(&other))
            .send()
            .await
            .expect("media")
            .status(),
        404
    );
    assert_eq!(
        app.client
            .get(app.url("/media/products/../../etc/passwd"))
            .send()
            .await
            .expect("media")
            .status(),
        404
    );
}

#[tokio::test]
async fn bad_uploads_are_clear_4xx_and_store_nothing() {
    let app = TestApp::spawn_with(|s| s.media.max_bytes = 4096).await;
    let (_, admin) = app.admin().await;
    let (_, customer, _) = app.customer("ann@example.com").await;
    let product = app.product(&admin, json!({})).await;
    let png = encoded(8, 8, image::ImageFormat::Png);

    // A text file named .png, and a JPEG cut short, by content.
    let r = upload(
        &app,
        Some(&admin),
        &product,
        &[file(
            "photo.png",
            "image/png",
            b"not an image at all".to_vec(),
        )],
    )
    .await;
    let problem = assert_problem(r, 422, "validation_error").await;
    assert_eq!(problem["errors"][0]["code"], "unsupported_type");
    let jpeg = encoded(40, 40, image::ImageFormat::Jpeg);
    let cut = jpeg[..jpeg.len() / 3].to_vec();
    let r = upload(
        &app,
        Some(&admin),
        &product,
        &[file("cut.jpg", "image/jpeg", cut)],
    )
    .await;
    let problem = assert_problem(r, 422, "validation_error").await;
    assert_eq!(problem["errors"][0]["code"], "undecodable", "{problem}");

    // Over media.max_bytes: 413.
    // Noise does not compress: well over the limit.
    let noise = image::RgbImage::from_fn(100, 100, |_, _| image::Rgb(rand::random::<[u8; 3]>()));
    let mut big = Vec::new();
    noise
        .write_to(&mut Cursor::new(&mut big), image::ImageFormat::Png)
        .expect("encoded");
    assert!(big.len() > 4096);
    let r = upload(
        &app,
        Some(&admin),
        &product,
        &[file("big.png", "image/png", big)],
    )
    .await;
    assert_problem(r, 413, "payload_too_large").await;

    // No file, two files, an unknown part, a bad variant list.
    let cases: Vec<(Vec<Part<'_>>, &str)> = vec![
        (vec![text("alt", "nothing")], "file"),
        (
            vec![
                file("a.png", "image/png", png.clone()),
                file("b.png", "image/png", png.clone()),
            ],
            "file",
        ),
        (
            vec![
                file("a.png", "image/png", png.clone()),
                text("caption", "x"),
            ],
            "caption",
        ),
        (
            vec![
                file("a.png", "image/png", png.clone()),
                text("variant_ids", "not-a-uuid"),
            ],
            "variant_ids",
        ),
        (
            vec![
                file("a.png", "image/png", png.clone()),
                text("variant_ids", &uuid::Uuid::new_v4().to_string()),
            ],
            "variant_ids",
        ),
        (
            vec![
                file("a.png", "image/png", png.clone()),
                text("alt", &"x".repeat(501)),
            ],
            "alt",
        ),
    ];
    for (parts, field) in cases {
        let r = upload(&app, Some(&admin), &product, &parts).await;
        let problem = assert_problem(r, 422, "validation_error").await;
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
    // Not multipart; a broken multipart body.
    let r = app
        .post(
            &format!("/api/v1/products/{}/images/", str_of(&product["id"])),
            Some(&admin),
            &json!({"file": "x"}),
        )
        .await;
    assert_problem(r, 415, "unsupported_media_type").await;
    let r = app
        .request(
            Method::POST,
            &format!("/api/v1/products/{}/images/", str_of(&product["id"])),
            Some(&admin),
        )
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body("--nonsense without an end")
        .send()
        .await
        .expect("sent");
    assert!(r.status().is_client_error(), "{}", r.status());

    // Who may upload, and where.
    let good = || vec![file("a.png", "image/png", png.clone())];
    assert_problem(
        upload(&app, Some(&customer), &product, &good()).await,
        403,
        "permission_denied",
    )
    .await;
    assert_eq!(upload(&app, None, &product, &good()).await.status(), 401);
    assert_eq!(
        upload(&app, Some("bad-token"), &product, &good())
            .await
            .status(),
        401
    );
    let ghost = json!({"id": uuid::Uuid::new_v4()});
    assert_problem(
        upload(&app, Some(&admin), &ghost, &good()).await,
        404,
        "not_found",
    )
    .await;

    // None of it left an image behind.
    let now: Value = app
        .get(
            &format!("/api/v1/products/{}/", str_of(&product["id"])),
            None,
        )
        .await
        .body_json()
        .await;
    assert_eq!(now["images"], json!([]));
    let files = walk(std::path::Path::new(&app.settings.media.root));
    assert_eq!(files, 0, "no file stored");
}

fn walk(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| {
                    let path = e.path();
                    if path.is_dir() {
                        walk(&path)
                    } else {
                        1
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}
