//! A document as a program item: the coach uploads a PDF (upload kind
//! `document`: its type from its first bytes, published at once), attaches
//! it to a free program, and an athlete who enrolls downloads it through
//! `media_link` (served as an attachment, byte for byte); before enrolling,
//! and for anyone else, it does not exist. Files that are not documents,
//! videos and other coaches' documents are refused as attachments.

use chalktalk_protocol::{ClientMsg, Reply, Role};
use serde_json::{Value, json};

use super::flows::{ATHLETE, COACH, Node, media_link};
use crate::common::media::{get, upload};

fn plan_pdf() -> Vec<u8> {
    let mut pdf = b"%PDF-1.4\n% chalktalk test document\n".to_vec();
    for i in 0..100 {
        pdf.extend_from_slice(format!("{i} 0 obj << /Squats {i} >> endobj\n").as_bytes());
    }
    pdf.extend_from_slice(b"trailer << >>\n%%EOF\n");
    pdf
}

fn program_with(asset: &str) -> Value {
    json!({"title": "Week 1", "sport": "weightlifting", "price": {"kind": "free"}, "items": [
        {"kind": "attachment", "id": "plan", "title": "The week's plan", "asset": asset},
    ]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_attached_to_a_program_downloads_for_its_holders_only() {
    let n = Node::start(None).await;
    let api = n.api();
    let doc = json!({"kind": "document"});

    // Not a document: refused whatever its name says.
    let r = upload(
        &n.node,
        COACH,
        Role::Coach,
        "plan.pdf",
        b"<html><script>alert(1)</script></html>",
        doc.clone(),
    )
    .await;
    assert_eq!(
        r.json()["error"],
        "unsupported_type",
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert!(r.status >= 400 && r.status < 500, "{}", r.status);

    let pdf = plan_pdf();
    let r = upload(
        &n.node,
        COACH,
        Role::Coach,
        "Week 1 plan.pdf",
        &pdf,
        doc.clone(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let a = r.json();
    assert_eq!(
        (
            &a["kind"],
            &a["stage"],
            &a["info"]["file"],
            &a["info"]["mime"]
        ),
        (
            &json!("document"),
            &json!("ready"),
            &json!("doc/Week_1_plan.pdf"),
            &json!("application/pdf")
        ),
        "{a}"
    );
    let asset = a["id"].as_str().expect("id").to_string();

    // Attachments are documents of the coach's own.
    n.video("v-clip").await;
    let r = upload(&n.node, "coach-2", Role::Coach, "theirs.pdf", &pdf, doc).await;
    assert_eq!(r.status, 200);
    let theirs = r.json()["id"].as_str().expect("id").to_string();
    for (bad, problem) in [
        ("v-clip", "is not a document"),
        (theirs.as_str(), "not an asset of yours"),
    ] {
        let r = api
            .post("/api/v1/programs", Some(&n.coach), program_with(bad))
            .await;
        assert_eq!(r.status, 422, "{}", r.text());
        assert!(
            r.json()["fields"]["items.asset"]
                .as_str()
                .unwrap_or("")
                .contains(problem),
            "{bad}: {}",
            r.text()
        );
    }

    let program = n.published(program_with(&asset)).await;

    let athlete = n.node.connect(ATHLETE, Role::Athlete, "phone").await;
    let other = n.node.connect("athlete-2", Role::Athlete, "phone").await;
    assert_eq!(
        media_link(&athlete, &asset).await,
        "not_found",
        "not enrolled yet"
    );
    n.enroll(&program).await;
    assert_eq!(
        media_link(&other, &asset).await,
        "not_found",
        "someone else"
    );
    let Reply::MediaLink { base, .. } = athlete
        .request(ClientMsg::MediaLink {
            asset: asset.clone(),
        })
        .await
        .expect("the holder's link")
    else {
        panic!("media_link expected")
    };
    let file = get(
        &n.node,
        &format!("{}doc/Week_1_plan.pdf", base.expect("base")),
        None,
    )
    .await;
    assert_eq!(file.status, 200);
    assert_eq!(file.header("content-type"), Some("application/pdf"));
    assert_eq!(
        file.header("content-disposition"),
        Some("attachment; filename=\"Week_1_plan.pdf\"")
    );
    assert_eq!(file.header("x-content-type-options"), Some("nosniff"));
    assert!(
        file.body == pdf,
        "the same bytes ({} against {})",
        file.body.len(),
        pdf.len()
    );
}
