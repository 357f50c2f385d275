//! The planner's entry point: statement text in, [`Plan`] out. Parses with sqlparser's
//! PostgreSQL dialect (tokenizing once, keeping byte offsets for splicing) and sends each
//! statement family to its planner: queries and DML to the shard planner, utility statements
//! naming managed tables to the DDL planner, pgshard's functions to the coordinator. Text that
//! does not parse is classified by its tokens: naming a managed table, it is refused; otherwise it
//! goes to the default node, where PostgreSQL answers for it.

use std::fmt;
use std::ops::ControlFlow;

use sqlparser::ast::{CopySource, Expr, FromTable, Statement, TableFactor, TableObject, Visit, Visitor};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::Token;

use crate::pull::PullPlan;
use crate::ddl::{self, DdlPlan};
use crate::funcs::builtin_name;
use crate::function::{FunctionCall, detect};
use crate::refs::{RelRef, collect, resolve};
use crate::route::{RelationKind, Relations};
use crate::shard::{self, ShardPlan};
use crate::text::Source;

/// Where and how a statement text runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// As written, on the default node: no distributed or reference table, reads of reference
    /// tables (with or without ordinary tables), text the planner cannot parse that names no
    /// managed table, and statements that are not about managed tables.
    DefaultNode,
    /// As written, on every node: writes to reference tables, DDL on reference tables.
    EveryNode,
    /// SELECT, INSERT, UPDATE or DELETE over distributed tables.
    Shards(ShardPlan),
    /// A utility statement naming distributed tables (or dropping managed tables).
    Ddl(DdlPlan),
    /// A call of one of pgshard's functions, for the coordinator to run.
    Function(FunctionCall),
    /// `COPY <distributed table> FROM STDIN` in text format: the coordinator splits the rows.
    CopyIn(CopyIn),
    /// EXPLAIN [ANALYZE] of a statement over distributed tables.
    Explain(Explain),
    /// A read answered by the default node over copies of its distributed tables.
    Pull(PullPlan),
    /// INSERT ... SELECT into a distributed table: rows computed on the default node, split
    /// by shard.
    InsertSelect(crate::insert_select::InsertSelect),
    /// UPDATE or DELETE of a distributed table whose subqueries are answered first, then
    /// planned again with their rows written in.
    Substitute(crate::substitute::Substitute),
    /// Refused with SQLSTATE 0A000 and this sentence (what is not supported).
    Unsupported(String),
}

/// EXPLAIN of a statement over distributed tables: the coordinator shows its distributed plan
/// and the shards' own EXPLAIN of what they are sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explain {
    /// EXPLAIN ANALYZE: the statement runs, and each shard reports its timings.
    pub analyze: bool,
    /// The EXPLAIN keyword and options as written, to prefix each shard's statement with
    /// (`EXPLAIN (ANALYZE, BUFFERS)`).
    pub prefix: String,
    /// The explained statement's text.
    pub sql: String,
    /// Its plan (a shard plan).
    pub inner: Box<Plan>,
}

/// `COPY <distributed table> [(columns)] FROM STDIN` in text format with default options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyIn {
    /// The colocation group of the table.
    pub group: i32,
    /// The table's name (unqualified; each shard's schema qualifies it).
    pub table: String,
    /// The column list as written, if any.
    pub columns: Option<Vec<String>>,
    /// Position of the distribution column among the fields of a line.
    pub dist_index: usize,
    /// How lines are written.
    pub format: CopyFormat,
    /// A reference table: every line goes to every node (`group` and `dist_index` unused),
    /// into the table under `schema` as written (unqualified when `None`).
    pub reference: Option<Option<String>>,
}

/// The COPY formats the coordinator splits by shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyFormat {
    /// Text: `delimiter`-separated fields with backslash escapes; `null` is NULL.
    Text {
        /// Field delimiter (tab by default).
        delimiter: char,
        /// The NULL marker (`\N` by default).
        null: String,
    },
    /// CSV: quoted fields may hold delimiters and newlines; an unquoted `null` is NULL.
    Csv {
        /// Field delimiter (`,` by default).
        delimiter: char,
        /// Quote character (`"` by default).
        quote: char,
        /// Escape character inside quotes (the quote by default).
        escape: char,
        /// The NULL marker (empty by default).
        null: String,
        /// The first line is a header: the coordinator skips it.
        header: bool,
    },
}

impl CopyIn {
    /// The statement that loads shard `schema` (a reference table: its copy on any node).
    pub fn render(&self, schema: &str) -> String {
        let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
        let cols = match &self.columns {
            Some(c) => format!(" ({})", c.iter().map(|c| quote(c)).collect::<Vec<_>>().join(", ")),
            None => String::new(),
        };
        let lit = |s: &str| format!("'{}'", s.replace('\'', "''"));
        let options = match &self.format {
            CopyFormat::Text { delimiter, null } => {
                format!("FORMAT text, DELIMITER {}, NULL {}", lit(&delimiter.to_string()), lit(null))
            }
            CopyFormat::Csv { delimiter, quote: q, escape, null, .. } => format!(
                "FORMAT csv, DELIMITER {}, QUOTE {}, ESCAPE {}, NULL {}",
                lit(&delimiter.to_string()),
                lit(&q.to_string()),
                lit(&escape.to_string()),
                lit(null)
            ),
        };
        let target = match &self.reference {
            Some(Some(own)) => format!("{}.{}", quote(own), quote(&self.table)),
            Some(None) => quote(&self.table),
            None => format!("{}.{}", quote(schema), quote(&self.table)),
        };
        format!("COPY {target}{cols} FROM STDIN ({options})")
    }
}

/// Plans a statement text (one statement, or several that all run on the default node).
pub fn plan_sql(sql: &str, rels: &impl Relations) -> Plan {
    let (src, tokens) = match Source::tokenize(sql) {
        Ok(t) => t,
        Err(e) => return untokenized(sql, rels, &e.to_string()),
    };
    let stmts = match Parser::new(&PostgreSqlDialect {}).with_tokens_with_locations(tokens).parse_statements() {
        Ok(s) => s,
        Err(e) => return unparsed(&src, rels, &e.to_string()),
    };
    match stmts.as_slice() {
        [] => Plan::DefaultNode,
        [one] => plan_statement(one, &src, rels),
        many => {
            if many.iter().all(|s| plan_statement(s, &src, rels) == Plan::DefaultNode) {
                Plan::DefaultNode
            } else {
                Plan::Unsupported(
                    "several statements in one query string that touch distributed or reference tables".into(),
                )
            }
        }
    }
}

fn managed(rels: &impl Relations, name: &str) -> bool {
    rels.kind_of(None, name).is_some()
}

/// The first word of the text that names a managed table.
fn named_table(src: &Source<'_>, rels: &impl Relations) -> Option<String> {
    (0..src.len()).find_map(|i| match src.tok(i).map(|t| &t.token) {
        Some(Token::Word(w)) => {
            let name = if w.quote_style.is_some() { w.value.clone() } else { w.value.to_lowercase() };
            managed(rels, &name).then_some(name)
        }
        _ => None,
    })
}

/// Text sqlparser cannot parse: refused if a word names a managed table.
fn unparsed(src: &Source<'_>, rels: &impl Relations, err: &str) -> Plan {
    match named_table(src, rels) {
        Some(name) => Plan::Unsupported(format!(
            "a statement the planner cannot parse ({err}) that names the distributed or reference table \"{name}\""
        )),
        None => Plan::DefaultNode,
    }
}

/// Text sqlparser cannot even tokenize: the same test on a rough split into words.
fn untokenized(sql: &str, rels: &impl Relations, err: &str) -> Plan {
    let named = sql
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
        .map(str::to_lowercase)
        .find(|w| !w.is_empty() && managed(rels, w));
    match named {
        Some(name) => Plan::Unsupported(format!(
            "a statement the planner cannot parse ({err}) that names the distributed or reference table \"{name}\""
        )),
        None => Plan::DefaultNode,
    }
}

fn plan_statement(stmt: &Statement, src: &Source<'_>, rels: &impl Relations) -> Plan {
    if let Some(call) = detect(stmt) {
        return call.map_or_else(Plan::Unsupported, Plan::Function);
    }
    match stmt {
        Statement::Query(_) | Statement::Insert(_) | Statement::Update(_) | Statement::Delete(_) => {
            plan_dml(stmt, src, rels)
        }
        Statement::AlterTable(_)
        | Statement::CreateIndex(_)
        | Statement::Drop { .. }
        | Statement::Truncate(_)
        | Statement::Lock(_)
        | Statement::Comment { .. }
        | Statement::Analyze(_)
        | Statement::Vacuum(_)
        | Statement::CreateTable(_)
        | Statement::CreateView(_) => ddl::plan(stmt, src, rels),
        Statement::Explain { statement, analyze, options, .. } => {
            explain(statement, *analyze, options.as_deref(), src, rels)
        }
        Statement::Prepare { statement, .. } => inner_on_default(statement, src, rels, "EXPLAIN or PREPARE"),
        Statement::Declare { stmts } => {
            for d in stmts {
                if let Some(q) = &d.for_query {
                    let p = inner_on_default(&Statement::Query(q.clone()), src, rels, "DECLARE CURSOR");
                    if p != Plan::DefaultNode {
                        return p;
                    }
                }
            }
            Plan::DefaultNode
        }
        Statement::Copy { source, to, .. } => copy(stmt, source, *to, src, rels),
        _ if session_statement(stmt) => Plan::DefaultNode,
        other => match named_table(src, rels) {
            Some(name) => Plan::Unsupported(format!(
                "{} naming the distributed or reference table \"{name}\"",
                first_words(other)
            )),
            None => Plan::DefaultNode,
        },
    }
}

/// Statements about the session, the transaction or objects other than tables.
fn session_statement(stmt: &Statement) -> bool {
    matches!(
        stmt,
        Statement::StartTransaction { .. }
            | Statement::Commit { .. }
            | Statement::Rollback { .. }
            | Statement::Savepoint { .. }
            | Statement::ReleaseSavepoint { .. }
            | Statement::Set(_)
            | Statement::ShowVariable { .. }
            | Statement::ShowVariables { .. }
            | Statement::Reset(_)
            | Statement::Discard { .. }
            | Statement::Deallocate { .. }
            | Statement::Execute { .. }
            | Statement::LISTEN { .. }
            | Statement::UNLISTEN { .. }
            | Statement::NOTIFY { .. }
            | Statement::CreateFunction(_)
            | Statement::CreateSchema { .. }
            | Statement::CreateDatabase { .. }
            | Statement::CreateRole(_)
            | Statement::CreateExtension(_)
            | Statement::CreateSequence { .. }
            | Statement::CreateType { .. }
            | Statement::Call(_)
    )
}

fn first_words(stmt: &Statement) -> String {
    stmt.to_string().split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}

/// EXPLAIN: as written on the default node when the statement runs there; otherwise the
/// statement (the text after EXPLAIN and its options) is planned on its own.
fn explain(
    inner: &Statement,
    analyze: bool,
    options: Option<&[sqlparser::ast::UtilityOption]>,
    src: &Source<'_>,
    rels: &impl Relations,
) -> Plan {
    match plan_statement(inner, src, rels) {
        Plan::DefaultNode => return Plan::DefaultNode,
        Plan::Unsupported(why) => return Plan::Unsupported(why),
        _ => {}
    }
    let off = |a: &Expr| matches!(a.to_string().to_lowercase().as_str(), "false" | "off" | "0");
    let analyze = analyze
        || options
            .into_iter()
            .flatten()
            .any(|o| o.name.value.eq_ignore_ascii_case("analyze") && !o.arg.as_ref().is_some_and(off));
    // The statement starts after EXPLAIN, its parenthesized options and legacy keywords.
    let mut i = 1;
    if matches!(src.tok(i).map(|t| &t.token), Some(Token::LParen)) {
        match src.close_of(i) {
            Some(close) => i = close + 1,
            None => return Plan::Unsupported("an EXPLAIN the planner cannot read".into()),
        }
    }
    while src.is_kw(i, "analyze") || src.is_kw(i, "analyse") || src.is_kw(i, "verbose") {
        i += 1;
    }
    let start = src.pos(i);
    let text = &src.sql[start..];
    match plan_sql(text, rels) {
        plan @ Plan::Shards(_) => Plan::Explain(Explain {
            analyze,
            prefix: src.sql[..start].trim().to_owned(),
            sql: text.to_owned(),
            inner: Box::new(plan),
        }),
        Plan::Unsupported(why) => Plan::Unsupported(why),
        plan @ Plan::Pull(_) if !analyze => Plan::Explain(Explain {
            analyze,
            prefix: src.sql[..start].trim().to_owned(),
            sql: text.to_owned(),
            inner: Box::new(plan),
        }),
        Plan::Pull(_) => Plan::Unsupported("EXPLAIN ANALYZE of a query answered over copies of its distributed tables".into()),
        _ => Plan::Unsupported(
            "EXPLAIN of a statement other than SELECT, INSERT, UPDATE or DELETE over distributed tables".into(),
        ),
    }
}

/// EXPLAIN, PREPARE, DECLARE of a statement: fine on the default node only when the statement
/// itself is.
fn inner_on_default(inner: &Statement, src: &Source<'_>, rels: &impl Relations, what: &str) -> Plan {
    match plan_statement(inner, src, rels) {
        Plan::DefaultNode => Plan::DefaultNode,
        Plan::Unsupported(why) => Plan::Unsupported(why),
        _ => Plan::Unsupported(format!("{what} of a statement over distributed or reference tables")),
    }
}

fn copy(stmt: &Statement, source: &CopySource, to: bool, src: &Source<'_>, rels: &impl Relations) -> Plan {
    match source {
        CopySource::Table { table_name, columns } => match resolve(table_name, src, rels) {
            Ok(RelRef { kind: Some(RelationKind::Distributed { column, group }), schema, name, .. }) => {
                copy_in(stmt, to, group, &column, schema.as_deref(), &name, columns, rels)
            }
            Ok(r) => match r.kind {
                Some(RelationKind::Reference) if !to => match copy_options(stmt, to, "a reference table") {
                    Ok(format) => Plan::CopyIn(CopyIn {
                        group: 0,
                        table: r.name.clone(),
                        columns: (!columns.is_empty()).then(|| columns.iter().map(crate::route::fold).collect()),
                        dist_index: 0,
                        format,
                        reference: Some(r.schema.clone()),
                    }),
                    Err(why) => Plan::Unsupported(why),
                },
                _ => Plan::DefaultNode,
            },
            Err(e) => Plan::Unsupported(e),
        },
        CopySource::Query(q) => inner_on_default(&Statement::Query(q.clone()), src, rels, "COPY (query)"),
    }
}

/// The format options of a COPY into a distributed table: text or CSV with their delimiter,
/// NULL marker, quote, escape and header; other options are refused.
fn copy_format(options: &[sqlparser::ast::CopyOption]) -> Result<CopyFormat, String> {
    use sqlparser::ast::CopyOption as O;
    let mut csv = false;
    let (mut delimiter, mut null, mut quote, mut escape, mut header) = (None, None, None, None, false);
    for o in options {
        match o {
            O::Format(f) if f.value.eq_ignore_ascii_case("text") => csv = false,
            O::Format(f) if f.value.eq_ignore_ascii_case("csv") => csv = true,
            O::Delimiter(c) => delimiter = Some(*c),
            O::Null(s) => null = Some(s.clone()),
            O::Quote(c) => quote = Some(*c),
            O::Escape(c) => escape = Some(*c),
            O::Header(h) => header = *h,
            other => return Err(format!("COPY into a distributed table with the option {other}")),
        }
    }
    if csv {
        let quote = quote.unwrap_or('"');
        Ok(CopyFormat::Csv {
            delimiter: delimiter.unwrap_or(','),
            quote,
            escape: escape.unwrap_or(quote),
            null: null.unwrap_or_default(),
            header,
        })
    } else if quote.is_some() || escape.is_some() || header {
        Err("COPY into a distributed table with QUOTE, ESCAPE or HEADER in text format".into())
    } else {
        Ok(CopyFormat::Text { delimiter: delimiter.unwrap_or('\t'), null: null.unwrap_or_else(|| "\\N".into()) })
    }
}

/// The format of a `COPY ... FROM STDIN` into `what` the coordinator splits, or why it cannot.
fn copy_options(stmt: &Statement, to: bool, what: &str) -> Result<CopyFormat, String> {
    let Statement::Copy { target, options, legacy_options, .. } = stmt else {
        return Err(format!("COPY of {what}"));
    };
    if to {
        return Err(format!("COPY ... TO of {what} (use COPY (SELECT ...) TO)"));
    }
    if !matches!(target, sqlparser::ast::CopyTarget::Stdin) {
        return Err(format!("COPY of {what} from a file or program (use FROM STDIN)"));
    }
    if !legacy_options.is_empty() {
        return Err(format!("COPY into {what} with pre-9.0 options"));
    }
    copy_format(options)
}

/// COPY into a distributed table: text or CSV from STDIN.
#[allow(clippy::too_many_arguments, reason = "the parts of one COPY statement")]
fn copy_in(
    stmt: &Statement,
    to: bool,
    group: i32,
    dist_column: &str,
    schema: Option<&str>,
    name: &str,
    columns: &[sqlparser::ast::Ident],
    rels: &impl Relations,
) -> Plan {
    let format = match copy_options(stmt, to, "a distributed table") {
        Ok(f) => f,
        Err(why) => return Plan::Unsupported(why),
    };
    let listed: Option<Vec<String>> = (!columns.is_empty()).then(|| columns.iter().map(crate::route::fold).collect());
    let fields = match &listed {
        Some(l) => l.clone(),
        None => match rels.columns_of(schema, name) {
            Some(c) => c,
            None => return Plan::Unsupported(format!("COPY into \"{name}\" without a column list (its columns are unknown)")),
        },
    };
    match fields.iter().position(|c| c == dist_column) {
        Some(dist_index) => {
            Plan::CopyIn(CopyIn { group, table: name.to_owned(), columns: listed, dist_index, format, reference: None })
        }
        None => Plan::Unsupported(format!(
            "COPY into \"{name}\" without its distribution column \"{dist_column}\""
        )),
    }
}

/// SELECT, INSERT, UPDATE, DELETE.
fn plan_dml(stmt: &Statement, src: &Source<'_>, rels: &impl Relations) -> Plan {
    let refs = match collect(stmt, src, rels) {
        Ok(r) => r,
        Err(e) => return Plan::Unsupported(e),
    };
    let writes = match write_targets(stmt, src, rels) {
        Ok(w) => w,
        Err(e) => return Plan::Unsupported(e),
    };
    let writes_reference = writes.iter().any(|w| w.kind == Some(RelationKind::Reference));
    let distributed: Vec<&RelRef> = refs.tables.iter().filter(|r| r.is_distributed()).collect();
    let Some(first) = distributed.first() else {
        if !writes_reference {
            return Plan::DefaultNode;
        }
        if let Some(local) = refs.tables.iter().find(|r| r.kind.is_none()) {
            return Plan::Unsupported(format!(
                "a write to a reference table that reads \"{}\", which exists only on the default node",
                local.name
            ));
        }
        if let Some(f) = volatile_call(stmt) {
            return Plan::Unsupported(format!(
                "a write to a reference table that calls {f}(), whose value would differ between nodes"
            ));
        }
        return Plan::EveryNode;
    };
    if writes_reference {
        return Plan::Unsupported("a statement that writes a reference table and reads a distributed table".into());
    }
    if writes.len() > 1 || (matches!(stmt, Statement::Query(_)) && !writes.is_empty()) {
        return modifying_with(stmt, src, &refs, &writes, rels);
    }
    if let Statement::Insert(i) = stmt
        && let Some(target) = writes.first()
        && let Some(RelationKind::Distributed { column, group }) = &target.kind
        && (crate::insert_select::is_insert_select(i) || crate::insert_select::needs_staging(i, target, column, rels))
    {
        if let Some(pushed) = crate::insert_select::colocated(i, column, *group, src, &refs, rels) {
            return Plan::Shards(pushed);
        }
        return crate::insert_select::plan(i, target, column, *group, src, &refs, rels)
            .map_or_else(Plan::Unsupported, Plan::InsertSelect);
    }
    // A read the shards cannot answer is answered on the default node over copies.
    // A read the shards cannot answer, or a write to an ordinary table (which lives on the
    // default node) that reads distributed tables, is answered on the default node over copies.
    let local_write = !writes.is_empty() && writes.iter().all(|w| w.kind.is_none());
    let distributed_write = !writes.is_empty() && writes.iter().all(|w| w.is_distributed());
    let pull = |why: String| {
        if distributed_write {
            // Correlated EXISTS made to stand on their own first, then answered first.
            if let Some(text) = crate::decorrelate::decorrelate(stmt, src, rels) {
                let p = plan_sql(&text, rels);
                if matches!(p, Plan::Substitute(_) | Plan::Shards(_)) {
                    return p;
                }
            }
            return crate::substitute::plan(stmt, src, &refs, &why).map_or_else(Plan::Unsupported, Plan::Substitute);
        }
        if !writes.is_empty() && !local_write {
            return Plan::Unsupported(why);
        }
        crate::pull::plan(stmt, src, &refs, rels, &why, local_write).map_or_else(Plan::Unsupported, Plan::Pull)
    };
    if let Some(local) = refs.tables.iter().find(|r| r.kind.is_none()) {
        return pull(format!(
            "a statement mixing the distributed table \"{}\" with \"{}\", which is not distributed",
            first.name, local.name
        ));
    }
    let group = |r: &RelRef| match r.kind {
        Some(RelationKind::Distributed { group, .. }) => group,
        _ => 0,
    };
    if let Some(other) = distributed.iter().find(|r| group(r) != group(first)) {
        return pull(format!(
            "a statement over distributed tables of different colocation groups (\"{}\" and \"{}\")",
            first.name, other.name
        ));
    }
    match shard::plan(stmt, group(first), src, &refs, rels) {
        Ok(mut p) => {
            if let (Err(why), true) = (&p.multi, writes.is_empty()) {
                p.pull = crate::pull::plan(stmt, src, &refs, rels, why, false).ok();
            }
            Plan::Shards(p)
        }
        Err(e) => pull(e),
    }
}

/// A statement with data-modifying WITH over distributed tables: run on their shards when
/// they are all of one colocation group (see `modifying`).
fn modifying_with(stmt: &Statement, src: &Source<'_>, refs: &crate::refs::Refs, writes: &[RelRef], rels: &impl Relations) -> Plan {
    const WHAT: &str = "a data-modifying WITH query over distributed tables";
    if let Some(local) = refs.tables.iter().chain(writes).find(|r| r.kind.is_none()) {
        return Plan::Unsupported(format!("{WHAT} that also reads or writes \"{}\", which is not distributed", local.name));
    }
    let groups: Vec<i32> = refs
        .tables
        .iter()
        .filter_map(|r| match r.kind {
            Some(RelationKind::Distributed { group, .. }) => Some(group),
            _ => None,
        })
        .collect();
    match groups.split_first() {
        Some((g, rest)) if rest.iter().all(|o| o == g) => {
            crate::modifying::plan(stmt, *g, src, refs, rels).map_or_else(Plan::Unsupported, Plan::Shards)
        }
        Some(_) => Plan::Unsupported(format!("{WHAT} of different colocation groups")),
        None => Plan::Unsupported(WHAT.into()),
    }
}

/// The tables a statement writes, including data-modifying statements in WITH.
pub(crate) fn write_targets(stmt: &Statement, src: &Source<'_>, rels: &impl Relations) -> Result<Vec<RelRef>, String> {
    struct Targets(Vec<sqlparser::ast::ObjectName>);
    impl Visitor for Targets {
        type Break = ();
        fn pre_visit_statement(&mut self, s: &Statement) -> ControlFlow<()> {
            match s {
                Statement::Insert(i) => {
                    if let TableObject::TableName(n) = &i.table {
                        self.0.push(n.clone());
                    }
                }
                Statement::Update(u) => {
                    if let TableFactor::Table { name, .. } = &u.table.relation {
                        self.0.push(name.clone());
                    }
                }
                Statement::Delete(d) => {
                    let (FromTable::WithFromKeyword(f) | FromTable::WithoutKeyword(f)) = &d.from;
                    if let Some(TableFactor::Table { name, .. }) = f.first().map(|t| &t.relation) {
                        self.0.push(name.clone());
                    }
                }
                _ => {}
            }
            ControlFlow::Continue(())
        }
    }
    let mut t = Targets(Vec::new());
    let _ = stmt.visit(&mut t);
    t.0.iter().map(|n| resolve(n, src, rels)).collect()
}

/// A function whose value differs from node to node, if the statement calls one.
fn volatile_call(stmt: &Statement) -> Option<String> {
    const VOLATILE: &[&str] = &[
        "random",
        "nextval",
        "setval",
        "now",
        "clock_timestamp",
        "statement_timestamp",
        "transaction_timestamp",
        "timeofday",
        "current_timestamp",
        "current_time",
        "current_date",
        "localtime",
        "localtimestamp",
        "gen_random_uuid",
        "uuid_generate_v1",
        "uuid_generate_v4",
        "txid_current",
        "pg_current_xact_id",
    ];
    struct Finder(Option<String>);
    impl Visitor for Finder {
        type Break = ();
        fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
            if let Expr::Function(f) = e
                && let Some(n) = builtin_name(f).filter(|n| VOLATILE.contains(&n.as_str()))
            {
                self.0 = Some(n);
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        }
    }
    let mut f = Finder(None);
    let _ = stmt.visit(&mut f);
    f.0
}

impl fmt::Display for Plan {
    /// EXPLAIN text of the plan.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Plan::DefaultNode => write!(f, "default node"),
            Plan::EveryNode => write!(f, "every node"),
            Plan::Shards(p) => write!(f, "{p}"),
            Plan::Ddl(d) => write!(f, "{d}"),
            Plan::Function(c) => write!(f, "function {c}"),
            Plan::Explain(e) => write!(f, "explain{} of {}", if e.analyze { " analyze" } else { "" }, e.inner),
            Plan::CopyIn(c) => write!(f, "copy in group {} field {}: {}", c.group, c.dist_index, c.render("<shard>")),
            Plan::Unsupported(why) => write!(f, "unsupported: {why}"),
            Plan::Pull(p) => write!(f, "pull {} to the default node: {}", p.tables.len(), p.query.render(Some(crate::pull::PULL_SCHEMA))),
            Plan::Substitute(p) => {
                let subs: Vec<String> = p.subqueries.iter().map(|s| s.query.render(Some(crate::pull::PULL_SCHEMA))).collect();
                write!(f, "answer first, then plan again: {}", subs.join(" | "))
            }
            Plan::InsertSelect(p) => write!(
                f,
                "insert into {} ({}) split by shard, pulling {}: {}",
                p.shell,
                p.column_list(None),
                p.sources.len(),
                p.query.render(Some(crate::pull::PULL_SCHEMA))
            ),
        }
    }
}

#[cfg(test)]
mod tests;
