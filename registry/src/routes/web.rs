//! The web view: what the registry holds, for people. Server-rendered HTML (maud escapes
//! every value), no JavaScript and no assets to build or fetch: one inline style sheet, the
//! upgrade graph as inline SVG, forms with plain GET parameters. Read-only, and authorised
//! like the API (pull scope; anonymous where the registry allows it).
//!
//! - `/`: the releases, each with its latest version, counts and channels.
//! - `/ui/releases/{name}?from=A&to=B`: its versions in rel's order (artifacts, sizes, how
//!   much of each release the previous one already holds, signers, channels, yanks), the
//!   upgrade graph with the cheapest path from A to B drawn over it, and what changed
//!   between A and B: applications, their modules, and the appups rel generates
//!   ([`super::changes`]).

use std::collections::{BTreeMap, HashSet};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use humansize::{BINARY, format_size};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use rel_format::Version;
use rel_format::manifest::{AppRef, Kind};
use rel_format::upgrade_path::{Plan, StepKind};
use serde::Deserialize;

use super::Caller;
use crate::AppState;
use crate::auth::Scope;
use crate::catalog::ReleaseFacts;
use crate::error::ApiError;

/// Versions a release page shows (the newest); older ones are counted, not read.
const PAGE_VERSIONS: usize = 100;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/ui/releases/{name}", get(release))
}

/// An error as a page, with the API's status and message.
struct WebError(ApiError);

impl From<ApiError> for WebError {
    fn from(e: ApiError) -> Self {
        WebError(e)
    }
}

impl From<crate::store::StoreError> for WebError {
    fn from(e: crate::store::StoreError) -> Self {
        WebError(e.into())
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let (status, message) = self.0.public_message();
        let title = status.canonical_reason().unwrap_or("Error");
        let hint = (status == StatusCode::UNAUTHORIZED).then_some(
            "This registry needs a token to read: pass it as `Authorization: Bearer TOKEN`, \
             or use the `rel` command with --token.",
        );
        let body = page(
            title,
            html! {
                h1 { (status.as_u16()) " " (title) }
                p.error { (message) }
                @if let Some(h) = hint { p { (h) } }
                p { a href="/" { "All releases" } }
            },
        );
        (status, html_headers(), body.into_string()).into_response()
    }
}

fn html_headers() -> [(header::HeaderName, &'static str); 2] {
    [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CACHE_CONTROL, "no-cache"),
    ]
}

fn page(title: &str, main: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · rel" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header { a href="/" { "rel" } " registry" }
                main { (main) }
            }
        }
    }
}

const STYLE: &str = "
body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1d1d1f;background:#fafafa}
header{background:#1d3557;color:#fff;padding:.6em 1.2em;font-weight:600}
header a{color:#fff;text-decoration:none}
main{padding:1em 1.2em;max-width:72em}
table{border-collapse:collapse;margin:.5em 0 1.5em}
th,td{text-align:left;padding:.3em .8em .3em 0;border-bottom:1px solid #ddd;vertical-align:top}
th{font-weight:600}
code,.v{font-family:ui-monospace,monospace;font-size:.92em}
.yanked{color:#888;text-decoration:line-through}
.tag{display:inline-block;background:#e1ecf7;border-radius:3px;padding:0 .4em;margin-right:.3em;font-size:.85em}
.tag.y{background:#f3d8d8}
.error{color:#a4161a;font-weight:600}
.added{color:#2b7a0b}.removed{color:#a4161a}.changed{color:#9c6500}
form{margin:.5em 0 1em}select,button{font:inherit;margin-right:.5em}
.nw{white-space:nowrap}
";

#[utoipa::path(
    get, path = "/", operation_id = "webIndex", tag = "web",
    responses((status = 200, description = "the releases, as a web page", content_type = "text/html", body = String))
)]
async fn index(State(state): State<AppState>, Caller(caller): Caller) -> Result<Response, WebError> {
    let names = super::releases::visible_names(&state, &caller).await?;
    let mut rows = Vec::new();
    for name in names {
        let view = state.catalog.view(&name).await?;
        let channels = view.channels.clone();
        let latest = view.versions.keys().rev().find(|v| !view.is_yanked(v)).cloned();
        rows.push((name, latest, view.versions.len(), channels));
    }
    let body = page(
        "Releases",
        html! {
            h1 { "Releases" }
            @if rows.is_empty() {
                p { "No release is stored yet. Push one with " code { "rel push" } "." }
            } @else {
                table {
                    thead { tr { th { "Release" } th { "Latest" } th { "Versions" } th { "Channels" } } }
                    tbody {
                        @for (name, latest, count, channels) in &rows {
                            tr {
                                td { a href=(format!("/ui/releases/{name}")) { (name) } }
                                td.v { @if let Some(v) = latest { (v) } @else { "(all yanked)" } }
                                td { (count) }
                                td { @for p in channels { span.tag { (p.channel) " → " (p.version) } } }
                            }
                        }
                    }
                }
            }
        },
    );
    Ok((html_headers(), body.into_string()).into_response())
}

#[derive(Deserialize)]
struct Between {
    from: Option<String>,
    to: Option<String>,
}

/// What the page shows of one version's release artifact.
struct Row {
    release: std::sync::Arc<ReleaseFacts>,
    /// Bytes of this release the previous version's release already holds.
    shared_with_previous: Option<u64>,
}

#[utoipa::path(
    get, path = "/ui/releases/{name}", operation_id = "webRelease", tag = "web",
    params(
        ("name" = String, Path, description = "release name"),
        ("from" = Option<rel_format::Version>, Query, description = "the upgrade graph's path starts here"),
        ("to" = Option<rel_format::Version>, Query, description = "and ends here"),
    ),
    responses(
        (status = 200, description = "its versions, the upgrade graph and what changed, as a web page", content_type = "text/html", body = String),
        (status = 404, description = "no such release, as a web page", content_type = "text/html", body = String),
    )
)]
async fn release(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(name): Path<String>,
    Query(between): Query<Between>,
) -> Result<Response, WebError> {
    if !rel_format::release::is_valid_name(&name) {
        return Err(ApiError::BadRequest(format!("`{}` is not a valid release name", name.escape_debug())).into());
    }
    caller.require(Scope::Pull, Some(&name))?;
    let view = state.catalog.view(&name).await?;
    if view.versions.is_empty() {
        return Err(ApiError::NotFound(format!("release `{name}` is not stored")).into());
    }
    let channels = &view.channels;
    let all: Vec<&Version> = view.versions.keys().collect();
    let shown = &all[all.len().saturating_sub(PAGE_VERSIONS)..];

    // Each shown version's release: its signers and apps (read from its manifest once), and
    // how much of it the previous version's release holds (a delta, computed once a pair).
    let mut facts: BTreeMap<&Version, Row> = BTreeMap::new();
    let mut previous: Option<&Version> = None;
    for v in shown {
        let read = || read_facts(&state, &name, v);
        let Some(release) = state.catalog.release_facts(&name, v, read).await? else {
            previous = None;
            continue;
        };
        let shared = match previous {
            Some(p) => Some(
                release
                    .bytes
                    .saturating_sub(super::releases::synthesised_delta(&state, &name, p, v).await?),
            ),
            None => None,
        };
        facts.insert(
            v,
            Row {
                release,
                shared_with_previous: shared,
            },
        );
        previous = Some(v);
    }

    // The pair to draw a path for and compare: as asked, else the previous version to the latest.
    let parse = |s: &Option<String>| s.as_deref().and_then(|s| s.parse::<Version>().ok());
    let to = parse(&between.to)
        .filter(|v| view.versions.contains_key(v))
        .or_else(|| all.iter().rev().find(|v| !view.is_yanked(v)).map(|v| (*v).clone()));
    let from = parse(&between.from)
        .filter(|v| view.versions.contains_key(v))
        .or_else(|| {
            let to = to.as_ref()?;
            all.iter()
                .rev()
                .find(|v| **v < to && !view.is_yanked(v))
                .map(|v| (*v).clone())
        });
    let plan = match (&from, &to) {
        (Some(f), Some(t)) => Some(view.graph.path(f, t).map_err(|e| e.to_string())),
        _ => None,
    };
    let diff = match (&from, &to) {
        (Some(f), Some(t)) => match (facts.get(f), facts.get(t)) {
            (Some(a), Some(b)) => Some(app_diff(&a.release.apps, &b.release.apps)),
            _ => None,
        },
        _ => None,
    };
    // Module by module, with the appups, when both releases are stored (and not huge).
    let changes = match (&from, &to, &diff) {
        (Some(f), Some(t), Some(_)) => super::changes::changes(&state, &name, f, t).await?,
        _ => None,
    };
    let upgrades: Vec<(Version, Version, bool)> = view
        .versions
        .values()
        .flatten()
        .filter(|s| s.kind == Kind::Upgrade)
        .flat_map(|s| s.from.iter().map(|f| (f.clone(), s.version.clone(), s.yanked)))
        .filter(|(f, t, _)| shown.contains(&f) && shown.contains(&t))
        .collect();

    let body = page(
        &name,
        html! {
            h1 { (name) }
            @if all.len() > shown.len() {
                p { (all.len() - shown.len()) " older versions are not shown." }
            }
            h2 { "Versions" }
            table {
                thead { tr {
                    th { "Version" } th { "Created" } th { "Release" } th { "Already held by the previous" }
                    th { "Upgrades to it from" } th { "Signed by" } th { "Channels, yanks" }
                } }
                tbody {
                    @for v in shown.iter().rev() {
                        @let artifacts = &view.versions[*v];
                        @let yanked = view.is_yanked(v);
                        @let f = facts.get(v);
                        tr id=(format!("v-{v}")) {
                            td class={ "v" @if yanked { " yanked" } } title=[view.yank_reasons.get(*v)] { (v) }
                            td.nw { (artifacts.iter().map(|a| a.created).min().map(|c| c.to_string()).unwrap_or_default()) }
                            td { @if let Some(f) = f { (format_size(f.release.bytes, BINARY)) } @else { "—" } }
                            td.share {
                                @if let Some(shared) = f.and_then(|f| f.shared_with_previous.map(|s| (s, f.release.bytes))) {
                                    (format!("{:.0}%", 100.0 * shared.0 as f64 / shared.1.max(1) as f64))
                                    " (" (format_size(shared.0, BINARY)) ")"
                                } @else { "—" }
                            }
                            td {
                                @for a in artifacts.iter().filter(|a| a.kind == Kind::Upgrade) {
                                    span.tag.y[a.yanked] {
                                        (a.from.iter().map(Version::as_str).collect::<Vec<_>>().join(", "))
                                        " · " (format_size(a.bytes, BINARY))
                                        @if a.yanked { " · yanked" }
                                    }
                                }
                            }
                            td { @if let Some(f) = f { (f.release.signers.join(", ")) } }
                            td {
                                @for p in channels.iter().filter(|p| &&p.version == v) { span.tag { (p.channel) } }
                                @if yanked { span.tag.y { "yanked" @if let Some(r) = view.yank_reasons.get(*v) { ": " (r) } } }
                            }
                        }
                    }
                }
            }
            h2 id="path" { "Upgrade path" }
            form method="get" action=(format!("/ui/releases/{name}")) {
                label { "From " select name="from" { @for v in shown.iter().rev() {
                    option value=(v) selected[Some(*v) == from.as_ref()] { (v) }
                } } }
                label { "to " select name="to" { @for v in shown.iter().rev() {
                    option value=(v) selected[Some(*v) == to.as_ref()] { (v) }
                } } }
                button type="submit" { "Show" }
            }
            @match &plan {
                Some(Ok(plan)) => { (plan_text(plan)) (graph_svg(shown, &upgrades, &view, Some(plan))) }
                Some(Err(e)) => { p.error { (e) } (graph_svg(shown, &upgrades, &view, None)) }
                None => { (graph_svg(shown, &upgrades, &view, None)) }
            }
            @if let (Some(d), Some(f), Some(t)) = (&diff, &from, &to) {
                h2 id="diff" { "Applications from " span.v { (f) } " to " span.v { (t) } }
                @if d.is_empty() {
                    p { "The same applications at the same versions." }
                } @else if let Some(c) = &changes {
                    (changes_html(c))
                } @else {
                    table {
                        thead { tr { th { "Application" } th { "From" } th { "To" } th { "" } } }
                        tbody { @for (app, a, b) in d {
                            @let (class, what) = match (a, b) {
                                (None, Some(_)) => ("added", "added"),
                                (Some(_), None) => ("removed", "removed"),
                                _ => ("changed", "changed"),
                            };
                            tr class=(class) {
                                td { (app) } td.v { (a.as_deref().unwrap_or("")) } td.v { (b.as_deref().unwrap_or("")) } td { (what) }
                            }
                        } }
                    }
                    p { "These releases are too large to compare here, module by module: "
                        code { "rel appup " (name) "@" (f) " " (name) "@" (t) } " does." }
                }
            }
        },
    );
    Ok((html_headers(), body.into_string()).into_response())
}

/// The applications that changed, their modules, and the appups rel generates for the upgrade.
fn changes_html(c: &super::changes::Changes) -> Markup {
    let list = |what: &str, class: &str, modules: &[String]| {
        html! {
            @if !modules.is_empty() {
                div class=(class) { (what) " (" (modules.len()) "): " code { (modules.join(", ")) } }
            }
        }
    };
    html! {
        @if !c.warnings.is_empty() {
            div.error {
                p { "rel is not sure of this upgrade; a host would not build it by itself:" }
                ul { @for w in &c.warnings { li { (w) } } }
            }
        }
        table.changes {
            thead { tr { th { "Application" } th { "From" } th { "To" } th { "Modules" } } }
            tbody { @for a in &c.apps {
                @let class = match (&a.from, &a.to) {
                    (None, Some(_)) => "added",
                    (Some(_), None) => "removed",
                    _ => "changed",
                };
                tr class=(class) id=(format!("app-{}", a.app)) {
                    td { (a.app) }
                    td.v { (a.from.as_deref().unwrap_or("")) }
                    td.v { (a.to.as_deref().unwrap_or("")) }
                    td {
                        (list("added", "added", &a.added))
                        (list("changed", "changed", &a.changed))
                        (list("removed", "removed", &a.removed))
                        @if a.added.is_empty() && a.changed.is_empty() && a.removed.is_empty() {
                            "no module changed"
                        }
                        @if let Some(appup) = &a.appup {
                            details { summary { "appup" } pre { (appup) } }
                        }
                    }
                }
            } }
        }
    }
}

async fn read_facts(state: &AppState, name: &str, v: &Version) -> Result<Option<ReleaseFacts>, ApiError> {
    let Some(env) = super::releases::stored_release(state, name, v).await? else {
        return Ok(None);
    };
    Ok(Some(ReleaseFacts {
        bytes: env.signed.tar.length,
        signers: env
            .signatures
            .iter()
            .map(|s| s.split(':').next().unwrap_or_default().to_owned())
            .collect(),
        apps: env.signed.apps,
    }))
}

/// Applications added, removed or at another version: (name, from vsn, to vsn), by name.
fn app_diff(from: &[AppRef], to: &[AppRef]) -> Vec<(String, Option<String>, Option<String>)> {
    let a: BTreeMap<&str, &str> = from.iter().map(|x| (x.name.as_str(), x.version.as_str())).collect();
    let b: BTreeMap<&str, &str> = to.iter().map(|x| (x.name.as_str(), x.version.as_str())).collect();
    let names: std::collections::BTreeSet<&str> = a.keys().chain(b.keys()).copied().collect();
    names
        .into_iter()
        .filter(|n| a.get(n) != b.get(n))
        .map(|n| {
            (
                n.to_owned(),
                a.get(n).map(|s| s.to_string()),
                b.get(n).map(|s| s.to_string()),
            )
        })
        .collect()
}

fn plan_text(plan: &Plan) -> Markup {
    html! {
        p.plan { (plan.reason) }
        @if !plan.steps.is_empty() {
            ol.steps { @for s in &plan.steps {
                li {
                    @match (s.kind, &s.from) {
                        (StepKind::Upgrade, Some(f)) => { "stored upgrade " span.v { (f) } " → " span.v { (s.to) } }
                        (StepKind::Synthesised, _) => { "upgrade built on the host to " span.v { (s.to) } }
                        _ => { "full release " span.v { (s.to) } " (a restart)" }
                    }
                    " · " (format_size(s.bytes, BINARY))
                }
            } }
        }
    }
}

/// The versions top (newest) to bottom, each stored upgrade an arc on the left from the
/// version it starts at to its target, the plan's steps drawn over them in red (a step the
/// host builds, dashed).
fn graph_svg(
    shown: &[&Version],
    upgrades: &[(Version, Version, bool)],
    view: &crate::catalog::NameView,
    plan: Option<&Plan>,
) -> Markup {
    const ROW: usize = 30;
    let order: Vec<&Version> = shown.iter().rev().copied().collect();
    let row = |v: &Version| order.iter().position(|x| *x == v);
    let span = |a: usize, b: usize| a.abs_diff(b);
    let widest = upgrades
        .iter()
        .filter_map(|(f, t, _)| Some(span(row(f)?, row(t)?)))
        .chain(plan.iter().flat_map(|p| {
            p.steps
                .iter()
                .filter_map(|s| Some(span(row(s.from.as_ref().unwrap_or(&p.from))?, row(&s.to)?)))
        }))
        .max()
        .unwrap_or(0);
    let x = 24 + 14 * widest.min(30);
    let y = |i: usize| 18 + i * ROW;
    let height = y(order.len().max(1)) - ROW / 2;
    let arc = |a: usize, b: usize| {
        let bend = x as f64 - 10.0 - 14.0 * span(a, b).min(30) as f64;
        format!("M{x},{} C{bend:.0},{} {bend:.0},{} {x},{}", y(a), y(a), y(b), y(b))
    };
    let on_path: HashSet<(Option<&Version>, &Version)> = plan
        .iter()
        .flat_map(|p| p.steps.iter().map(|s| (s.from.as_ref(), &s.to)))
        .collect();
    // Each step with the version it starts at: a release or synthesised step starts where
    // the one before it ended.
    let mut steps = Vec::new();
    if let Some(p) = plan {
        let mut at = p.from.clone();
        for s in &p.steps {
            steps.push((s.from.clone().unwrap_or_else(|| at.clone()), s.to.clone(), s.kind));
            at = s.to.clone();
        }
    }
    let ends: Vec<&Version> = plan.iter().flat_map(|p| [&p.from, &p.to]).collect();
    let width = x + 380;
    html! {
        svg xmlns="http://www.w3.org/2000/svg" width=(width) height=(height) viewBox=(format!("0 0 {width} {height}"))
            role="img" aria-labelledby="graph-title" class="graph" {
            title id="graph-title" { "Upgrade graph: " (upgrades.len()) " stored upgrades between " (order.len()) " versions" }
            @for (f, t, yanked) in upgrades {
                @if let (Some(a), Some(b)) = (row(f), row(t)) {
                    @let hot = on_path.contains(&(Some(f), t));
                    path d=(arc(a, b)) fill="none" stroke=(if hot { "#c1121f" } else if *yanked { "#d9a5a5" } else { "#9aa5b1" })
                        stroke-width=(if hot { "3" } else { "1.5" }) class=(if hot { "edge on-path" } else { "edge" }) {
                        title { "upgrade " (f) " → " (t) @if *yanked { " (yanked)" } }
                    }
                }
            }
            @for (f, t, kind) in &steps {
                @if *kind != StepKind::Upgrade {
                    @if let (Some(a), Some(b)) = (row(f), row(t)) {
                        path d=(arc(a, b)) fill="none" stroke="#c1121f" stroke-width="3" stroke-dasharray="6 4" class="edge on-path" {
                            title { (if *kind == StepKind::Synthesised { "built on the host: " } else { "full release: " }) (f) " → " (t) }
                        }
                    }
                }
            }
            @for (i, v) in order.iter().enumerate() {
                @let ends = ends.contains(v);
                circle cx=(x) cy=(y(i)) r=(if ends { "7" } else { "5" })
                    fill=(if view.is_yanked(v) { "#fff" } else if ends { "#c1121f" } else { "#1d3557" }) stroke="#1d3557" {}
                text x=(x + 14) y=(y(i) + 5) font-family="ui-monospace,monospace" font-size="13"
                    text-decoration=[view.is_yanked(v).then_some("line-through")] { (v) }
            }
        }
    }
}
