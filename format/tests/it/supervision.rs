//! Supervisors read from BEAM code against what running nodes report, and the appup
//! instructions made from them.
//!
//! The ids and names of the fixture releases' supervisors are the ones `which_children` gave
//! on nodes booted from each version (fixtures/NOTES.md, "Supervisor child ids"; demo's from
//! its sources). The samples (`fixtures/sup`) hold one supervisor per idiom of declaring
//! children; their expected ids are what a live node reported for the same code
//! (fixtures/NOTES.md, "Supervisor samples"), with the parts that depend on run-time values
//! unknown and the ones that depend on configuration conditional.

use std::collections::BTreeMap;
use std::path::Path;

use rel_format::appup::{AppupSource, Clause, Extra, Side, clause, plan_appups};
use rel_format::beam::Beam;
use rel_format::snapshot::{AppSnapshot, ModuleSummary, ReleaseSnapshot};
use rel_format::supervision::resolve::library_rule;
use rel_format::supervision::{Expr, Name, Supervision, SupervisionIndex, SupervisorKind, Syntax};
use rel_format::term::{Term, parse_term};
use rel_testkit::fixtures::{Fixture, out_dir};

fn release(fixture: &Fixture, v: &str) -> ReleaseSnapshot {
    ReleaseSnapshot::from_tar(std::fs::File::open(fixture.tarball(v)).unwrap(), None).unwrap()
}

/// One line per supervisor whose children `modules` declare: its name (and module, when it
/// is registered under another name or none), where an inline one is started, then its child
/// ids in start order; `?` marks an id that only some of the code's paths have, `<why>` one
/// that cannot be known.
fn table<'a>(index: &SupervisionIndex<'_>, modules: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out = Vec::new();
    for module in modules {
        let syntax = Syntax::of_module(module);
        for v in index.supervisors(module) {
            let name = match (&v.name, &v.kind) {
                (Name::Registered(n), SupervisorKind::Module(m)) if n.as_atom() == Some(m.as_str()) => syntax.term(n),
                (Name::Registered(n), SupervisorKind::Module(m)) => {
                    format!("{} as {}", syntax.module(m), syntax.term(n))
                }
                (Name::Registered(n), _) => syntax.term(n),
                (Name::Unnamed, kind) => format!("{}, unnamed", syntax.module(kind.module())),
                (Name::Unknown(why), kind) => format!("{}, name unknown: {why}", syntax.module(kind.module())),
            };
            let site = match &v.kind {
                SupervisorKind::Module(_) => String::new(),
                SupervisorKind::Inline { module, function } => {
                    format!(" (inline in {}.{function})", syntax.module(module))
                }
            };
            let ids: Vec<String> = v
                .children
                .iter()
                .map(|c| {
                    let id = match &c.id {
                        Ok(id) => syntax.term(id),
                        Err(why) => format!("<{why}>"),
                    };
                    format!("{}{id}", if c.conditional { "?" } else { "" })
                })
                .collect();
            out.push(format!("{name}{site}: {}", ids.join(", ")));
        }
    }
    out.sort();
    out
}

fn app_table(release: &ReleaseSnapshot, apps: &[&str]) -> Vec<String> {
    let index = release.supervision();
    let modules = apps
        .iter()
        .filter_map(|a| release.apps.get(*a))
        .flat_map(|a| a.beams.keys().map(String::as_str));
    table(&index, modules)
}

#[test]
fn fixture_supervisors_have_the_ids_and_names_running_nodes_report() {
    let shop = Fixture::shop();
    let expected: [&[&str]; 4] = [
        &[
            "Shop.Supervisor (inline in Shop.Application.start/2): Shop.Store, Shop.WorkerSup, Shop.Http.Listener",
            "Shop.WorkerSup: Shop.Cache, Shop.Worker, :beta, :gamma",
        ],
        &[
            "Shop.Supervisor (inline in Shop.Application.start/2): Shop.Store, Shop.WorkerSup, Shop.Audit, \
             Shop.Http.Listener",
            "Shop.WorkerSup: Shop.Cache, Shop.Worker, :gamma, :delta",
        ],
        &[
            "Shop.Supervisor (inline in Shop.Application.start/2): Shop.Store, Shop.WorkerSup, Shop.Audit, \
             Shop.TaskSup, Shop.Http.Listener",
            "Shop.WorkerSup: Shop.Worker, :gamma, :delta, Shop.Ticker",
        ],
        &[
            "Shop.Supervisor (inline in Shop.Application.start/2): Shop.Store, Shop.WorkerSup, Shop.TaskSup, \
             Shop.Http.Listener",
            "Shop.WorkerSup: Shop.Worker, :gamma, :delta, Shop.Ticker",
        ],
    ];
    let versions = shop.versions();
    assert_eq!(versions.len(), expected.len());
    for (v, want) in versions.iter().zip(expected) {
        assert_eq!(app_table(&release(&shop, v), &["shop"]), want, "shop {v}");
    }

    let ledger = Fixture::ledger();
    let expected: [&[&str]; 3] = [
        &["ledger_sup: ledger_store, ledger_http"],
        &["ledger_sup: ledger_store, ledger_audit, ledger_http"],
        &["ledger_sup: ledger_store, ledger_rates, ledger_http"],
    ];
    for (v, want) in ledger.versions().iter().zip(expected) {
        assert_eq!(app_table(&release(&ledger, v), &["ledger"]), want, "ledger {v}");
    }

    let demo = Fixture::demo();
    let expected: [&[&str]; 3] = [
        &["demo_sup: demo_server"],
        &["demo_sup: demo_server"],
        // demo_extra_app is an application callback that is also its own supervisor's.
        &["demo_extra_app: ", "demo_sup: demo_server, demo_worker"],
    ];
    for (v, want) in demo.versions().iter().zip(expected) {
        assert_eq!(app_table(&release(&demo, v), &["demo", "demo_extra"]), want, "demo {v}");
    }
}

/// The supervisor instructions of the generated appup clause, up and down.
fn supervisor_instructions(from: &ReleaseSnapshot, to: &ReleaseSnapshot, app: &str) -> (Vec<String>, Vec<String>) {
    let (plans, warnings) = plan_appups(&[from], to, &|_| None, &|_| None);
    assert!(warnings.is_empty(), "{warnings:?}");
    let plan = plans.iter().find(|p| p.app == app).unwrap();
    assert_eq!(plan.source, AppupSource::Generated);
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
    let t = plan.appup.as_tuple().unwrap();
    let clause = |list: &Term| -> Vec<String> {
        let clauses = list.as_list().unwrap();
        assert_eq!(clauses.len(), 1);
        clauses[0].as_tuple().unwrap()[1]
            .as_list()
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .filter(|i| {
                i.starts_with("{apply,{supervisor,")
                    || i.starts_with("{apply,{'Elixir.Supervisor',")
                    || i.ends_with(",supervisor}")
            })
            .collect()
    };
    (clause(&t[1]), clause(&t[2]))
}

#[test]
fn appups_stop_and_start_the_children_supervisors_lose_and_gain() {
    let shop = Fixture::shop();
    let s: Vec<ReleaseSnapshot> = shop.versions().iter().map(|v| release(&shop, v)).collect();
    let worker_sup = |f: &str, id: &str| format!("{{apply,{{supervisor,{f},['Elixir.Shop.WorkerSup',{id}]}}}}");
    let top = |f: &str, id: &str| format!("{{apply,{{supervisor,{f},['Elixir.Shop.Supervisor',{id}]}}}}");
    let start =
        |child: &str| format!("{{apply,{{'Elixir.Supervisor',start_child,['Elixir.Shop.Supervisor',{child}]}}}}");
    let update = "{update,'Elixir.Shop.WorkerSup',supervisor}".to_owned();
    let stop = |at: &dyn Fn(&str, &str) -> String, id: &str| [at("terminate_child", id), at("delete_child", id)];

    // v1 -> v2: WorkerSup (a callback module) loses :beta and gains :delta; the inline
    // Shop.Supervisor gains Shop.Audit, started as Shop.Application writes it.
    let (up, down) = supervisor_instructions(&s[0], &s[1], "shop");
    assert_eq!(
        up,
        [
            stop(&worker_sup, "beta").to_vec(),
            vec![
                update.clone(),
                worker_sup("restart_child", "delta"),
                start("'Elixir.Shop.Audit'")
            ],
        ]
        .concat()
    );
    assert_eq!(
        down,
        [
            stop(&top, "'Elixir.Shop.Audit'").to_vec(),
            stop(&worker_sup, "delta").to_vec(),
            vec![update.clone(), worker_sup("restart_child", "beta")],
        ]
        .concat()
    );

    // v2 -> v3: WorkerSup loses Shop.Cache (whose module goes) and gains Shop.Ticker (whose
    // module comes); Shop.Supervisor gains {Task.Supervisor, name: Shop.TaskSup}, whose id
    // Elixir's own Task.Supervisor.child_spec/1 gives.
    let (up, down) = supervisor_instructions(&s[1], &s[2], "shop");
    let task_sup = "{'Elixir.Task.Supervisor',[{name,'Elixir.Shop.TaskSup'}]}";
    assert_eq!(
        up,
        [
            stop(&worker_sup, "'Elixir.Shop.Cache'").to_vec(),
            vec![
                update.clone(),
                worker_sup("restart_child", "'Elixir.Shop.Ticker'"),
                start(task_sup)
            ],
        ]
        .concat()
    );
    assert_eq!(
        down,
        [
            stop(&top, "'Elixir.Shop.TaskSup'").to_vec(),
            stop(&worker_sup, "'Elixir.Shop.Ticker'").to_vec(),
            vec![update.clone(), worker_sup("restart_child", "'Elixir.Shop.Cache'")],
        ]
        .concat()
    );

    // v3 -> v4: Shop.Supervisor loses Shop.Audit, whose module goes; WorkerSup is unchanged.
    let (up, down) = supervisor_instructions(&s[2], &s[3], "shop");
    assert_eq!(up, stop(&top, "'Elixir.Shop.Audit'"));
    assert_eq!(down, vec![start("'Elixir.Shop.Audit'")]);

    // v1 -> v3, skipping v2.
    let (up, down) = supervisor_instructions(&s[0], &s[2], "shop");
    assert_eq!(
        up,
        [
            stop(&worker_sup, "'Elixir.Shop.Cache'").to_vec(),
            stop(&worker_sup, "beta").to_vec(),
            vec![
                update.clone(),
                worker_sup("restart_child", "delta"),
                worker_sup("restart_child", "'Elixir.Shop.Ticker'"),
                start("'Elixir.Shop.Audit'"),
                start(task_sup),
            ],
        ]
        .concat()
    );
    assert_eq!(
        down,
        [
            stop(&top, "'Elixir.Shop.TaskSup'").to_vec(),
            stop(&top, "'Elixir.Shop.Audit'").to_vec(),
            stop(&worker_sup, "'Elixir.Shop.Ticker'").to_vec(),
            stop(&worker_sup, "delta").to_vec(),
            vec![
                update.clone(),
                worker_sup("restart_child", "beta"),
                worker_sup("restart_child", "'Elixir.Shop.Cache'"),
            ],
        ]
        .concat()
    );

    let ledger = Fixture::ledger();
    let l: Vec<ReleaseSnapshot> = ledger.versions().iter().map(|v| release(&ledger, v)).collect();
    let sup = |f: &str, id: &str| format!("{{apply,{{supervisor,{f},[ledger_sup,{id}]}}}}");
    let update = "{update,ledger_sup,supervisor}".to_owned();
    let (up, down) = supervisor_instructions(&l[0], &l[1], "ledger");
    assert_eq!(up, vec![update.clone(), sup("restart_child", "ledger_audit")]);
    assert_eq!(
        down,
        [stop(&sup, "ledger_audit").to_vec(), vec![update.clone()]].concat()
    );
    let (up, down) = supervisor_instructions(&l[1], &l[2], "ledger");
    assert_eq!(
        up,
        [
            stop(&sup, "ledger_audit").to_vec(),
            vec![update.clone(), sup("restart_child", "ledger_rates")]
        ]
        .concat()
    );
    assert_eq!(
        down,
        [
            stop(&sup, "ledger_rates").to_vec(),
            vec![update, sup("restart_child", "ledger_audit")]
        ]
        .concat()
    );
}

#[test]
fn children_start_after_their_module_is_loaded_and_stop_before_it_is_deleted() {
    let shop = Fixture::shop();
    let s: Vec<ReleaseSnapshot> = shop.versions().iter().map(|v| release(&shop, v)).collect();
    let (plans, _) = plan_appups(&[&s[0]], &s[1], &|_| None, &|_| None);
    let appup = plans.iter().find(|p| p.app == "shop").unwrap().appup.to_string();
    let at = |what: &str| appup.find(what).unwrap_or_else(|| panic!("{what} in {appup}"));
    let audit_added = at("{add_module,'Elixir.Shop.Audit'");
    let audit_started = at("start_child,['Elixir.Shop.Supervisor','Elixir.Shop.Audit']");
    let audit_stopped = at("terminate_child,['Elixir.Shop.Supervisor','Elixir.Shop.Audit']");
    let audit_deleted = at("{delete_module,'Elixir.Shop.Audit'}");
    // The up clause comes first in the appup, then the down clause.
    assert!(audit_added < audit_started && audit_started < audit_stopped && audit_stopped < audit_deleted);

    let (plans, _) = plan_appups(&[&s[2]], &s[3], &|_| None, &|_| None);
    let appup = plans.iter().find(|p| p.app == "shop").unwrap().appup.to_string();
    let at = |what: &str| appup.find(what).unwrap_or_else(|| panic!("{what} in {appup}"));
    let stopped = at("terminate_child,['Elixir.Shop.Supervisor','Elixir.Shop.Audit']");
    let deleted = at("{delete_module,'Elixir.Shop.Audit'}");
    let added = at("{add_module,'Elixir.Shop.Audit'");
    let started = at("start_child,['Elixir.Shop.Supervisor','Elixir.Shop.Audit']");
    assert!(stopped < deleted && deleted < added && added < started);
}

/// The supervisor samples of version `v` (`fixtures/sup`) as an application, with the Elixir
/// standard library beams of the shop release (Registry, Task.Supervisor...) beside them.
struct Samples {
    app: AppSnapshot,
    elixir: Vec<ModuleSummary>,
}

impl Samples {
    fn read(v: &str) -> Samples {
        let summaries = |dir: &Path, only: &dyn Fn(&str) -> bool| -> Vec<ModuleSummary> {
            let mut out = Vec::new();
            for e in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}; run fixtures/build.sh", dir.display()))
            {
                let p = e.unwrap().path();
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                if name.ends_with(".beam") && only(&name) {
                    let beam = Beam::parse(&p.to_string_lossy(), std::fs::read(&p).unwrap()).unwrap();
                    out.push(ModuleSummary::of(&beam).unwrap());
                }
            }
            out
        };
        let beams = summaries(&out_dir().join("sup").join(v), &|_| true);
        let lib = out_dir().join("shop/build/v1/lib");
        let elixir_dir = std::fs::read_dir(&lib)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("elixir-"))
            .unwrap();
        let elixir = summaries(&elixir_dir.join("ebin"), &|name| !name.starts_with("Elixir.Sample."));
        Samples {
            app: AppSnapshot {
                name: "sample".into(),
                vsn: v.into(),
                app_modules: beams.iter().map(|m| m.name.clone()).collect(),
                beams: beams.into_iter().map(|m| (m.name.clone(), m)).collect(),
                appup: None,
                extra: None,
            },
            elixir,
        }
    }

    fn index(&self) -> SupervisionIndex<'_> {
        SupervisionIndex::new(
            self.app
                .beams
                .values()
                .chain(&self.elixir)
                .map(|m| (m.name.as_str(), &m.supervision)),
        )
    }
}

#[test]
fn every_idiom_of_declaring_children_gives_the_ids_a_running_node_reports() {
    let samples = Samples::read("v1");
    let got = table(&samples.index(), samples.app.beams.keys().map(String::as_str));
    let runtime = "<its id is only known at run time: {Sample.Cache, <init/1's argument>}>";
    let worker = "<the id given to Supervisor.child_spec/2, {:worker, <init/1's argument>}, is only known at run time>";
    let expected = [
        "Sample.SubSup, unnamed: ".to_owned(),
        "Sample.Sup.Concat: Sample.Store, ?:custom_worker, Sample.Job".into(),
        "Sample.Sup.Cond: Sample.Store, ?Sample.Job, :named1".into(),
        "Sample.Sup.Helper: :h1, :h2".into(),
        "Sample.Sup.Inline: Sample.Store, Sample.Job".into(),
        "Sample.Sup.Lib: Sample.Registry, Sample.TaskSup, Sample.DynSup, :named2, Sample.Named".into(),
        "Sample.Sup.Literal: Sample.Store, :custom_worker".into(),
        "Sample.Sup.Loop: {:cache, 1}, {:cache, 2}".into(),
        "Sample.Sup.Mixed: Sample.Store, :custom_worker, Sample.Counter, :d, :e2, Sample.Job, Sample.SubSup".into(),
        format!("Sample.Sup.Runtime: Sample.Counter, {runtime}, {worker}"),
        // Two init/1 clauses: the `:minimal` one has only Sample.Store.
        "Sample.Sup.Tricky: Sample.Store, ?Sample.Job, ?{Sample.Cache, :t}, ?:tricky_named".into(),
        "Sample.Supervisor (inline in Sample.Application.start/2): Sample.Sup.Mixed, Sample.Sup.Literal, \
         Sample.Sup.Runtime, Sample.Sup.Inline, Sample.Sup.Concat, Sample.Sup.Cond, Sample.Sup.Loop, Sample.Sup.Lib, \
         Sample.Sup.Helper, Sample.Sup.Tricky, :erl_sup, :erl_sup_rt"
            .into(),
        "sample_erl_sup: a, b".into(),
        "sample_erl_sup_rt: a, b, <its id is only known at run time: {c,<the argument of init/1>}>, d".into(),
    ];
    assert_eq!(got, expected);
}

#[test]
fn unknown_children_warn_with_the_extra_to_write_unless_an_extra_addresses_the_supervisor() {
    let (v1, v2) = (Samples::read("v1"), Samples::read("v2"));
    let (i1, i2) = (v1.index(), v2.index());
    let generate = |extra: &Extra| {
        clause(
            Side {
                app: &v1.app,
                index: &i1,
            },
            Side {
                app: &v2.app,
                index: &i2,
            },
            extra,
        )
    };
    let Clause { up, down, warnings } = generate(&Extra::default());
    let children = |list: &[Term]| -> Vec<String> {
        list.iter()
            .map(ToString::to_string)
            .filter(|i| {
                i.starts_with("{apply,{supervisor,")
                    || i.starts_with("{apply,{'Elixir.Supervisor',")
                    || i.ends_with(",supervisor}")
            })
            .collect()
    };
    let top = |f: &str, id: &str| format!("{{apply,{{supervisor,{f},['Elixir.Sample.Supervisor',{id}]}}}}");
    let start =
        |child: &str| format!("{{apply,{{'Elixir.Supervisor',start_child,['Elixir.Sample.Supervisor',{child}]}}}}");
    let named3 = "{'Elixir.Sample.Named',[{name,named3}]}";
    // Supervisor.child_spec({Sample.Cache, :x}, id: :cache_x): the spec Sample.Cache's
    // child_spec/1 gives, with the id put in.
    let cache_x = "#{id => cache_x,start => {'Elixir.Sample.Cache',start_link,[x]}}";
    assert_eq!(
        children(&up),
        vec![
            "{update,'Elixir.Sample.SubSup',supervisor}".to_owned(),
            "{update,'Elixir.Sample.Sup.Runtime',supervisor}".to_owned(),
            top("terminate_child", "'Elixir.Sample.Sup.Tricky'"),
            top("delete_child", "'Elixir.Sample.Sup.Tricky'"),
            start(named3),
            start(cache_x),
        ]
    );
    assert_eq!(
        children(&down),
        vec![
            top("terminate_child", "cache_x"),
            top("delete_child", "cache_x"),
            top("terminate_child", "named3"),
            top("delete_child", "named3"),
            start("{'Elixir.Sample.Sup.Tricky',[]}"),
            "{update,'Elixir.Sample.Sup.Runtime',supervisor}".to_owned(),
            "{update,'Elixir.Sample.SubSup',supervisor}".to_owned(),
        ]
    );
    let unnamed = "sample: supervisor Sample.SubSup: it has no registered name, so no appup instruction can \
                   address it, and its children changed (new: Sample.Store). Register it under a name (then rel \
                   generates the instructions), or restart it";
    let runtime = "sample: supervisor Sample.Sup.Runtime: rel cannot know the id of child `{Sample.Cache, {:extra, \
                   <init/1's argument>}}`: its id is only known at run time: {Sample.Cache, {:extra, <init/1's \
                   argument>}}. If that child is new, add to sample.extra (Id being its id):\n    \
                   {up_after, [{apply,{supervisor,restart_child,['Elixir.Sample.Sup.Runtime',Id]}}]}.\n    \
                   {down_before, [{apply,{supervisor,terminate_child,['Elixir.Sample.Sup.Runtime',Id]}}, \
                   {apply,{supervisor,delete_child,['Elixir.Sample.Sup.Runtime',Id]}}]}.";
    let dep = "sample: supervisor Sample.Supervisor (Supervisor.start_link/2 in Sample.Application.start/2): rel \
               cannot know the id of child `{SomeDep, [name: Application.get_env(:sample, :dep_name)]}`: SomeDep is \
               not in the release. If that child is new, add to sample.extra (Id being its id, ChildSpec the child as \
               Supervisor.start_child/2 takes it):\n    \
               {up_after, [{apply,{'Elixir.Supervisor',start_child,['Elixir.Sample.Supervisor',ChildSpec]}}]}.\n    \
               {down_before, [{apply,{supervisor,terminate_child,['Elixir.Sample.Supervisor',Id]}}, \
               {apply,{supervisor,delete_child,['Elixir.Sample.Supervisor',Id]}}]}.";
    assert_eq!(warnings, vec![unnamed, runtime, dep]);
    // SPEC.md §8.2 shows this warning.
    let spec = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../SPEC.md")).unwrap();
    let shown = &spec[spec
        .find("sample: supervisor Sample.Supervisor")
        .expect("the example in SPEC.md")..];
    let words = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    assert_eq!(words(&shown[..shown.find("```").unwrap()]), words(dep));

    // The user wrote the instructions for Sample.Supervisor: its warning goes, the others stay.
    let extra = Extra::parse(
        "sample.extra",
        "{up_after, [{apply, {'Elixir.Supervisor', start_child, ['Elixir.Sample.Supervisor', \
         {'Elixir.SomeDep', [{name, dep}]}]}}]}.\n\
         {down_before, [{apply, {supervisor, terminate_child, ['Elixir.Sample.Supervisor', 'Elixir.SomeDep']}}]}.",
    )
    .unwrap();
    assert_eq!(generate(&extra).warnings, vec![unnamed, runtime]);
}

#[test]
fn built_in_library_child_specs_agree_with_elixirs_own() {
    let samples = Samples::read("v1");
    let own = samples.index();
    let none = SupervisionIndex::default();
    let parse = |text: &str| Expr::term(parse_term("arg", text).unwrap());
    let args = [
        "[].",
        "[{name, 'Elixir.Shop.Reg'}].",
        "[{keys, unique}, {name, 'Elixir.Shop.Reg'}].",
        "[{name, {global, g}}].",
        "[{name, {via, 'Elixir.Registry', {r, n}}}].",
        "[{strategy, one_for_one}].",
    ];
    let mut compared = BTreeMap::new();
    for module in [
        "Elixir.Agent",
        "Elixir.Task",
        "Elixir.Registry",
        "Elixir.Task.Supervisor",
        "Elixir.DynamicSupervisor",
    ] {
        assert!(library_rule(module).is_some(), "{module}");
        assert!(
            own.supervision(module)
                .and_then(|s: &Supervision| s.child_spec.as_ref())
                .is_some(),
            "{module} has a child_spec/1 in the release"
        );
        for arg in args {
            let child = Expr::tuple(vec![Expr::atom(module), parse(arg)]);
            let built_in = none.child_id(&child, Syntax::Elixir);
            let derived = own.child_id(&child, Syntax::Elixir);
            // Where Elixir's child_spec/1 raises (Task.Supervisor with no list), so may ours;
            // where it gives an id, ours gives the same.
            if let Ok(id) = &derived {
                assert_eq!(built_in.as_ref(), Ok(id), "{module} {arg}");
            }
            compared.insert((module, arg), derived.is_ok());
        }
    }
    assert!(compared.values().filter(|ok| **ok).count() >= 25, "{compared:?}");
    // And what `child_spec/1` gave on a running node (fixtures/NOTES.md).
    for (module, arg, id) in [
        ("Elixir.DynamicSupervisor", "[{name, {global, g}}].", "g"),
        (
            "Elixir.DynamicSupervisor",
            "[{name, {via, 'Elixir.Registry', {'Elixir.R', k}}}].",
            "{'Elixir.R',k}",
        ),
        ("Elixir.Task.Supervisor", "[].", "'Elixir.Task.Supervisor'"),
        ("Elixir.Agent", "[].", "'Elixir.Agent'"),
        ("Elixir.Task", "[].", "'Elixir.Task'"),
    ] {
        let child = Expr::tuple(vec![Expr::atom(module), parse(arg)]);
        for index in [&own, &none] {
            let got = index.child_id(&child, Syntax::Elixir).map(|t| t.to_string());
            assert_eq!(got.as_deref(), Ok(id), "{module} {arg}");
        }
    }
}
