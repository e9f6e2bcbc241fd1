//! Resolution stage: mentions → canonical entities.
//!
//! Extractors report every surface form they see (`Acme Corp.`, `ACME Corporation`,
//! `Acme`); downstream consumers (structured extraction, the database, reviewers) want one
//! entity per real-world thing with its aliases. Resolution here is deterministic and offline:
//! the same mentions always give the same entities, so results can be cached by a hash of the
//! mention set.
//!
//! # Rules
//!
//! Mentions of different kinds never merge. Within a kind, mentions with the same
//! *normalisation key* form a group; some groups are then joined (person short forms, ORG
//! acronyms). The key is:
//!
//! | kind | key |
//! |---|---|
//! | ORG | case-folded words, `.`/`'` removed inside words (`L.L.C.` → `llc`), other punctuation a word break, `&` read as `and`; a leading `the` dropped; trailing legal suffixes dropped (`Inc`, `Incorporated`, `LLC`, `LLP`, `Ltd`, `Limited`, `Corp`, `Corporation`, `Co`, `Company`, `PC`, `PLLC`, `NA`, `GmbH`, `SA`, repeatedly, never the last word). So `Acme Corp.`, `ACME Corporation`, `Acme, Inc.` **and a bare `Acme`** are one entity; `Acme Holdings LLC` is another. |
//! | PERSON | case-folded words with honorifics dropped (`Mr`, `Ms`, `Mrs`, `Mx`, `Dr`, `Prof`, `Hon`, `Honorable`, `The`, `Judge`, `Justice`, `Chief`, `Magistrate`, `Circuit`, `District`, and titles such as `Governor`, `Senator`, `Officer`, `Detective`, `Clerk`, `Attorney` before the name, so `Governor Public` is the short form of `Jane Q. Public`; `Esq` anywhere), `Smith, John` read as `John Smith`. A *full name* (a first name of two or more letters and a surname) keys on first name + surname + generational suffix (`Jr`, `Sr`, `II`…), so `John A. Smith` = `John Smith`. A *short form* (a surname alone, or initials + surname: `Smith`, `J. Smith`) keys on its own words, and then joins the full-name entity with the same surname (and a first name starting with the initial, if any) when exactly one such entity exists; if none or several do, it stays alone. |
//! | DATE, MONEY, EMAIL, PHONE | [`Mention::normalized`] (case-folded), so `March 1, 2024` and `03/01/2024` meet at `2024-03-01`; the text if `normalized` is empty. |
//! | CASE_NUMBER | case-folded, leading `Case`/`Civil Action`/`Docket`/`No.`/`#` words dropped, whitespace removed: `Case No. 1:24-CV-01234` = `1:24-cv-01234`. |
//! | STATUTE, CITATION | case-folded, `Section`/`Sec.`/`§§` written `§`, `.` removed except between digits, whitespace removed: `42 U.S.C. § 1983` = `42 USC Section 1983`. |
//! | COURT, LOCATION, ADDRESS, CASE_NAME | as ORG without the suffix rule: case-folded words, a leading `the` dropped. |
//!
//! **ORG acronyms.** A group whose every surface form is 2–6 capital letters (`AWC`,
//! `A.W.C.`) joins the one ORG group whose initials (of its significant words: not `of`,
//! `and`, `the`, `for`, …; with or without the legal suffix) spell it: `AWC` ↔ `Acme
//! Widgets Corporation`. If two long forms match, the acronym stays alone.
//!
//! # Output
//!
//! Entities are ordered by their earliest mention (start offset, then input position) and
//! numbered `e0`, `e1`, …. `name` is the longest surface form (ties: the most frequent, then
//! the lexicographically smallest); `aliases` are the distinct surface forms, sorted, `name`
//! included; `mention_ids` follow input order. Surface forms are trimmed and internal
//! whitespace runs (line breaks from OCR) collapsed to one space. Every mention belongs to
//! exactly one entity.

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use regex::Regex;

use crate::model::{CanonicalEntity, EntityKind, Mention};

/// Bump when grouping rules change, so cached resolutions are invalidated.
pub const RESOLVER_VERSION: u32 = 2;

/// Groups mentions that name the same thing, following the rules in the
/// [module docs](self). Deterministic: the same mentions in the same order give the same
/// entities, ids included.
pub fn resolve(mentions: &[Mention]) -> Vec<CanonicalEntity> {
    // 1. Group by (kind, key), groups numbered in order of first appearance.
    let mut groups: Vec<Group> = Vec::new();
    let mut by_key: HashMap<(EntityKind, String), usize> = HashMap::new();
    for (i, mention) in mentions.iter().enumerate() {
        let (key, person) = key_of(mention);
        let next = groups.len();
        let g = *by_key.entry((mention.kind, key)).or_insert(next);
        if g == next {
            groups.push(Group {
                kind: mention.kind,
                person,
                members: Vec::new(),
            });
        }
        groups[g].members.push(i);
    }

    // 2. Join short person names and ORG acronyms to their unique long forms.
    let mut sets = DisjointSets::new(groups.len());
    join_person_short_forms(&groups, &mut sets);
    join_org_acronyms(&groups, mentions, &mut sets);

    // 3. One entity per set, ordered by earliest mention.
    let mut members_of: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (g, group) in groups.iter().enumerate() {
        members_of
            .entry(sets.find(g))
            .or_default()
            .extend(&group.members);
    }
    let mut entities: Vec<(EntityKind, Vec<usize>)> = members_of
        .into_iter()
        .map(|(root, mut members)| {
            members.sort_unstable();
            (groups[root].kind, members)
        })
        .collect();
    entities.sort_by_key(|(_, members)| {
        members
            .iter()
            .map(|&i| (mentions[i].start, i))
            .min()
            .expect("every entity has a mention")
    });

    entities
        .into_iter()
        .enumerate()
        .map(|(n, (kind, members))| entity(n, kind, &members, mentions))
        .collect()
}

/// Similarity (Jaro-Winkler over lower-case names and aliases) from which two PERSON or ORG
/// entities the rules kept apart are worth asking about.
pub const AMBIGUOUS_SIMILARITY: f64 = 0.88;
/// Most pairs put to an adjudicator per document.
pub const MAX_AMBIGUOUS_PAIRS: usize = 20;

/// Pairs of entities (indices into `entities`) of one kind, PERSON or ORG, that the rules
/// did not join but whose names are close (`strsim` Jaro-Winkler at least
/// [`AMBIGUOUS_SIMILARITY`] between some name or alias of each): `Acme Holding LLC` and
/// `Acme Holdings LLC`, `Jon Smith` and `John Smith`. The closest first, at most
/// [`MAX_AMBIGUOUS_PAIRS`].
pub fn ambiguous_pairs(entities: &[CanonicalEntity]) -> Vec<(usize, usize)> {
    let forms: Vec<Vec<String>> = entities
        .iter()
        .map(|e| {
            std::iter::once(&e.name)
                .chain(&e.aliases)
                .map(|f| f.to_lowercase())
                .collect()
        })
        .collect();
    let mut pairs = Vec::new();
    for i in 0..entities.len() {
        for j in i + 1..entities.len() {
            let (a, b) = (&entities[i], &entities[j]);
            if a.kind != b.kind || !matches!(a.kind, EntityKind::Person | EntityKind::Org) {
                continue;
            }
            let best = forms[i]
                .iter()
                .flat_map(|x| forms[j].iter().map(move |y| strsim::jaro_winkler(x, y)))
                .fold(0.0, f64::max);
            if best >= AMBIGUOUS_SIMILARITY {
                pairs.push((best, i, j));
            }
        }
    }
    pairs.sort_by(|a, b| b.0.total_cmp(&a.0).then((a.1, a.2).cmp(&(b.1, b.2))));
    pairs
        .into_iter()
        .take(MAX_AMBIGUOUS_PAIRS)
        .map(|(_, i, j)| (i, j))
        .collect()
}

/// `entities` with the pairs (indices) joined, rebuilt and renumbered as [`resolve`]
/// builds them (name, aliases, order by earliest mention). Pairs of different kinds are
/// ignored.
pub fn join_entities(
    mentions: &[Mention],
    entities: &[CanonicalEntity],
    pairs: &[(usize, usize)],
) -> Vec<CanonicalEntity> {
    let mut sets = DisjointSets::new(entities.len());
    for &(a, b) in pairs {
        if a < entities.len() && b < entities.len() && entities[a].kind == entities[b].kind {
            sets.union(a, b);
        }
    }
    let index: HashMap<&str, usize> = mentions
        .iter()
        .enumerate()
        .map(|(i, m)| (m.id.as_str(), i))
        .collect();
    let mut members_of: BTreeMap<usize, (EntityKind, Vec<usize>)> = BTreeMap::new();
    for (e, entity) in entities.iter().enumerate() {
        let slot = members_of
            .entry(sets.find(e))
            .or_insert_with(|| (entity.kind, Vec::new()));
        slot.1.extend(
            entity
                .mention_ids
                .iter()
                .filter_map(|id| index.get(id.as_str())),
        );
    }
    let mut joined: Vec<(EntityKind, Vec<usize>)> = members_of
        .into_values()
        .filter(|(_, m)| !m.is_empty())
        .map(|(kind, mut m)| {
            m.sort_unstable();
            (kind, m)
        })
        .collect();
    joined.sort_by_key(|(_, members)| {
        members
            .iter()
            .map(|&i| (mentions[i].start, i))
            .min()
            .expect("non-empty")
    });
    joined
        .into_iter()
        .enumerate()
        .map(|(n, (kind, members))| entity(n, kind, &members, mentions))
        .collect()
}

/// Mentions sharing a kind and a normalisation key.
struct Group {
    kind: EntityKind,
    /// The parsed name, for PERSON groups.
    person: Option<PersonName>,
    /// Indices into the mention slice, in input order.
    members: Vec<usize>,
}

/// A person's name reduced to what matching needs.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PersonName {
    /// `John A. Smith`: first name (≥ 2 letters), surname, generational suffix.
    Full {
        first: String,
        surname: String,
        generation: Option<String>,
    },
    /// `Smith`, `J. Smith`, `J. A. Smith`: the first initial, if any, and the surname.
    Short {
        initial: Option<char>,
        surname: String,
        generation: Option<String>,
    },
}

/// Builds the [`CanonicalEntity`] numbered `n` from its mentions (indices, input order).
fn entity(n: usize, kind: EntityKind, members: &[usize], mentions: &[Mention]) -> CanonicalEntity {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for &i in members {
        *counts.entry(surface_form(&mentions[i].text)).or_default() += 1;
    }
    let name = counts
        .iter()
        .max_by(|(a, ca), (b, cb)| {
            a.chars()
                .count()
                .cmp(&b.chars().count())
                .then(ca.cmp(cb))
                .then(b.cmp(a))
        })
        .map(|(name, _)| name.clone())
        .unwrap_or_default();
    CanonicalEntity {
        id: format!("e{n}"),
        kind,
        name,
        aliases: counts.into_keys().collect(),
        mention_ids: members.iter().map(|&i| mentions[i].id.clone()).collect(),
    }
}

/// A mention's text as shown to people: trimmed, whitespace runs collapsed.
fn surface_form(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The normalisation key of a mention (and its parsed name, for a person).
fn key_of(mention: &Mention) -> (String, Option<PersonName>) {
    let key = match mention.kind {
        EntityKind::Person => {
            let name = parse_person(&mention.text);
            let key = name.as_ref().map(person_key);
            return match key {
                Some(key) => (key, name),
                None => (fallback_key(&mention.text), None),
            };
        }
        EntityKind::Org => org_key(&mention.text),
        EntityKind::Date | EntityKind::Money | EntityKind::Email | EntityKind::Phone => {
            mention.normalized.trim().to_lowercase()
        }
        EntityKind::CaseNumber => case_number_key(&mention.text),
        EntityKind::Statute | EntityKind::Citation => statute_key(&mention.text),
        EntityKind::Court | EntityKind::Location | EntityKind::Address | EntityKind::CaseName => {
            let mut words = words(&mention.text, true);
            drop_leading_the(&mut words);
            words.join(" ")
        }
    };
    if key.is_empty() {
        (fallback_key(&mention.text), None)
    } else {
        (key, None)
    }
}

/// Key for text the kind's rules reduce to nothing (e.g. only punctuation): the text itself,
/// so such mentions only meet their exact (case-folded) twins.
fn fallback_key(text: &str) -> String {
    surface_form(text).to_lowercase()
}

/// Case-folded words of `text`. `&` reads as `and`; apostrophes are dropped inside words;
/// `.` is dropped inside words when `dot_joins` (so `L.L.C.` → `llc`) and breaks words
/// otherwise (so `J.A. Smith` → `j a smith`); any other non-alphanumeric char breaks words.
fn words(text: &str, dot_joins: bool) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    for c in text.chars() {
        if c.is_alphanumeric() {
            word.extend(c.to_lowercase());
        } else if matches!(c, '\'' | '’') || (c == '.' && dot_joins) {
            // joined: `O'Brien` → `obrien`
        } else {
            if !word.is_empty() {
                out.push(std::mem::take(&mut word));
            }
            if c == '&' {
                out.push("and".to_string());
            }
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

fn drop_leading_the(words: &mut Vec<String>) {
    if words.len() > 1 && words[0] == "the" {
        words.remove(0);
    }
}

/// Legal-form suffixes dropped from the end of ORG names (after [`words`] with `.` joined).
const ORG_SUFFIXES: &[&str] = &[
    "inc",
    "incorporated",
    "llc",
    "llp",
    "ltd",
    "limited",
    "corp",
    "corporation",
    "co",
    "company",
    "pc",
    "pllc",
    "na",
    "gmbh",
    "sa",
];

/// ORG words without a leading `the` (suffixes kept).
fn org_words(text: &str) -> Vec<String> {
    let mut words = words(text, true);
    drop_leading_the(&mut words);
    words
}

/// ORG words without a leading `the` and without trailing legal suffixes.
fn org_core_words(text: &str) -> Vec<String> {
    let mut words = org_words(text);
    while words.len() > 1 && ORG_SUFFIXES.contains(&words[words.len() - 1].as_str()) {
        words.pop();
    }
    words
}

fn org_key(text: &str) -> String {
    org_core_words(text).join(" ")
}

/// Words skipped when spelling an acronym.
const ACRONYM_STOPWORDS: &[&str] = &[
    "of", "and", "the", "for", "in", "on", "at", "a", "an", "to", "de",
];

/// The acronym a surface form spells (`AWC`, `A.W.C.`), lower-cased, if it is one.
fn as_acronym(text: &str) -> Option<String> {
    let letters: String = text.trim().chars().filter(|&c| c != '.').collect();
    let n = letters.chars().count();
    ((2..=6).contains(&n) && letters.chars().all(|c| c.is_ascii_uppercase()))
        .then(|| letters.to_ascii_lowercase())
}

/// Initials of the significant words, e.g. `acme widgets corporation` → `awc`.
fn initials(words: &[String]) -> Option<String> {
    let significant: Vec<&String> = words
        .iter()
        .filter(|w| !ACRONYM_STOPWORDS.contains(&w.as_str()))
        .collect();
    (significant.len() >= 2).then(|| {
        significant
            .iter()
            .filter_map(|w| w.chars().next())
            .collect()
    })
}

/// Joins each ORG group that is an acronym to the one ORG group it abbreviates.
fn join_org_acronyms(groups: &[Group], mentions: &[Mention], sets: &mut DisjointSets) {
    let text_of = |i: usize| mentions[i].text.as_str();
    // Acronyms each long-form group can be abbreviated as, with and without the suffix.
    let spelled: Vec<Vec<String>> = groups
        .iter()
        .map(|g| {
            if g.kind != EntityKind::Org {
                return Vec::new();
            }
            let mut out: Vec<String> = g
                .members
                .iter()
                .flat_map(|&i| {
                    [
                        initials(&org_words(text_of(i))),
                        initials(&org_core_words(text_of(i))),
                    ]
                })
                .flatten()
                .collect();
            out.sort();
            out.dedup();
            out
        })
        .collect();
    for (a, group) in groups.iter().enumerate() {
        if group.kind != EntityKind::Org {
            continue;
        }
        let acronym: Option<Vec<String>> = group
            .members
            .iter()
            .map(|&i| as_acronym(text_of(i)))
            .collect();
        let Some(acronym) = acronym.and_then(|forms| {
            let first = forms.first()?.clone();
            forms.iter().all(|f| *f == first).then_some(first)
        }) else {
            continue;
        };
        let mut matches = (0..groups.len()).filter(|&g| g != a && spelled[g].contains(&acronym));
        if let (Some(long), None) = (matches.next(), matches.next()) {
            sets.union(a, long);
        }
    }
}

/// Honorifics and titles dropped before a person's name.
const HONORIFICS: &[&str] = &[
    "mr",
    "mrs",
    "ms",
    "mx",
    "dr",
    "prof",
    "hon",
    "honorable",
    "the",
    "judge",
    "justice",
    "chief",
    "magistrate",
    "circuit",
    "district",
    "governor",
    "senator",
    "officer",
    "detective",
    "sergeant",
    "deputy",
    "professor",
    "clerk",
    "trustee",
    "attorney",
];

/// Generational suffixes kept apart from the surname.
const GENERATIONS: &[&str] = &["jr", "sr", "ii", "iii", "iv"];

/// Parses a person's name (see the module docs); `None` if nothing name-like is left.
fn parse_person(text: &str) -> Option<PersonName> {
    // `Smith, John A.` → `John A. Smith`, unless what follows the comma is a suffix.
    let reordered;
    let text = match text.split_once(',') {
        Some((last, rest)) => {
            let rest_words = words(rest, false);
            let is_suffix = rest_words
                .iter()
                .all(|w| w == "esq" || GENERATIONS.contains(&w.as_str()));
            if is_suffix || words(last, false).len() != 1 {
                text
            } else {
                reordered = format!("{rest} {last}");
                reordered.as_str()
            }
        }
        None => text,
    };
    let mut words: Vec<String> = words(text, false)
        .into_iter()
        .filter(|w| w != "esq")
        .collect();
    let leading = words
        .iter()
        .take_while(|w| HONORIFICS.contains(&w.as_str()))
        .count()
        .min(words.len().saturating_sub(1));
    words.drain(..leading);
    let generation = match words.last() {
        Some(w) if words.len() > 1 && GENERATIONS.contains(&w.as_str()) => words.pop(),
        _ => None,
    };
    let surname = words.pop()?;
    let first = words.first();
    Some(match first {
        Some(first) if first.chars().count() >= 2 => PersonName::Full {
            first: first.clone(),
            surname,
            generation,
        },
        Some(_) if words.iter().any(|w| w.chars().count() >= 2) => {
            // `J. Robert Smith`: the full middle name makes it a name of its own.
            return Some(PersonName::Full {
                first: words.join(" "),
                surname,
                generation,
            });
        }
        _ => PersonName::Short {
            initial: first.and_then(|w| w.chars().next()),
            surname,
            generation,
        },
    })
}

/// The group key of a parsed person name. Full and short keys never collide: a full key
/// has a first name of two or more letters where a short key has an initial or nothing.
fn person_key(name: &PersonName) -> String {
    let (head, surname, generation) = match name {
        PersonName::Full {
            first,
            surname,
            generation,
        } => (Some(first.clone()), surname, generation),
        PersonName::Short {
            initial,
            surname,
            generation,
        } => (initial.map(String::from), surname, generation),
    };
    head.into_iter()
        .chain([surname.clone()])
        .chain(generation.clone())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Joins each short-form PERSON group to the one full-name group it can refer to.
fn join_person_short_forms(groups: &[Group], sets: &mut DisjointSets) {
    for (s, group) in groups.iter().enumerate() {
        let Some(PersonName::Short {
            initial,
            surname,
            generation,
        }) = &group.person
        else {
            continue;
        };
        let mut candidates = groups.iter().enumerate().filter(|(_, g)| match &g.person {
            Some(PersonName::Full {
                first,
                surname: full_surname,
                generation: full_generation,
            }) => {
                full_surname == surname
                    && initial.is_none_or(|c| first.starts_with(c))
                    && (generation.is_none() || generation == full_generation)
            }
            _ => false,
        });
        if let (Some((full, _)), None) = (candidates.next(), candidates.next()) {
            sets.union(s, full);
        }
    }
}

/// `Case No. 1:24-CV-01234` → `1:24-cv-01234`.
static CASE_NUMBER_PREFIX: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?:(?:case|civil|criminal|action|docket|index|number|num|nos|no)\b\.?\s*[:#]?\s*|#\s*)+",
    )
    .expect("case number prefix regex")
});

fn case_number_key(text: &str) -> String {
    let lower = text.trim().to_lowercase();
    let rest = CASE_NUMBER_PREFIX.replace(&lower, "");
    rest.chars().filter(|c| !c.is_whitespace()).collect()
}

/// `Section`, `Sections`, `Sec.`, `Secs.` (case-folded) before a statute section number.
static SECTION_WORD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b(?:sections?|secs?)\b\.?").expect("section word regex"));

/// `42 U.S.C. § 1983` → `42usc§1983`.
fn statute_key(text: &str) -> String {
    let lower = text.trim().to_lowercase();
    let lower = SECTION_WORD.replace_all(&lower, "§");
    let chars: Vec<char> = lower.replace("§§", "§").chars().collect();
    let mut key = String::with_capacity(chars.len());
    for (i, &c) in chars.iter().enumerate() {
        let between_digits = i > 0
            && chars[i - 1].is_ascii_digit()
            && chars.get(i + 1).is_some_and(char::is_ascii_digit);
        if c.is_whitespace() || (c == '.' && !between_digits) {
            continue;
        }
        key.push(c);
    }
    key
}

/// Union-find over group indices; the smaller index is the root, so the result does not
/// depend on the order of unions.
struct DisjointSets {
    parent: Vec<usize>,
}

impl DisjointSets {
    fn new(n: usize) -> Self {
        DisjointSets {
            parent: (0..n).collect(),
        }
    }

    fn find(&mut self, mut x: usize) -> usize {
        while self.parent[x] != x {
            self.parent[x] = self.parent[self.parent[x]];
            x = self.parent[x];
        }
        x
    }

    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        let (lo, hi) = (ra.min(rb), ra.max(rb));
        self.parent[hi] = lo;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// Mentions of the given kinds and texts, placed one after another in the text.
    fn mentions(items: &[(EntityKind, &str, &str)]) -> Vec<Mention> {
        let mut at = 0;
        items
            .iter()
            .enumerate()
            .map(|(i, &(kind, text, normalized))| {
                let start = at;
                at += text.chars().count() + 1;
                Mention {
                    id: format!("m{i}"),
                    kind,
                    text: text.to_string(),
                    normalized: normalized.to_string(),
                    start,
                    end: start + text.chars().count(),
                    confidence: 0.9,
                    chunk_id: "c0-0000000000000000".to_string(),
                }
            })
            .collect()
    }

    fn of_kind(kind: EntityKind, texts: &[&str]) -> Vec<Mention> {
        let items: Vec<_> = texts.iter().map(|&t| (kind, t, t)).collect();
        mentions(&items)
    }

    /// Each entity as its sorted aliases, in output order.
    fn alias_sets(entities: &[CanonicalEntity]) -> Vec<Vec<&str>> {
        entities
            .iter()
            .map(|e| e.aliases.iter().map(String::as_str).collect())
            .collect()
    }

    #[test]
    fn close_names_the_rules_kept_apart_are_candidates_and_joining_them_keeps_a_partition() {
        let ms = of_kind(
            EntityKind::Org,
            &[
                "Globex Inc.",
                "Acme Holdings LLC",
                "Acme Holding LLC",
                "Initech",
            ],
        );
        let entities = resolve(&ms);
        assert_eq!(entities.len(), 4);
        let pairs = ambiguous_pairs(&entities);
        assert_eq!(pairs, vec![(1, 2)], "{entities:?}");
        let joined = join_entities(&ms, &entities, &pairs);
        assert_partition(&ms, &joined);
        assert_eq!(
            alias_sets(&joined),
            vec![
                vec!["Globex Inc."],
                vec!["Acme Holding LLC", "Acme Holdings LLC"],
                vec!["Initech"]
            ]
        );
        assert_eq!(
            joined[1].name, "Acme Holdings LLC",
            "the longest form names it"
        );
        // Different kinds are never joined, nor are dates however alike.
        let dates = of_kind(EntityKind::Date, &["2024-03-01", "2024-03-02"]);
        assert!(ambiguous_pairs(&resolve(&dates)).is_empty());
    }

    fn assert_partition(mentions: &[Mention], entities: &[CanonicalEntity]) {
        let mut seen = BTreeSet::new();
        for (n, e) in entities.iter().enumerate() {
            assert_eq!(e.id, format!("e{n}"));
            assert!(e.aliases.contains(&e.name));
            assert!(
                e.aliases.windows(2).all(|w| w[0] < w[1]),
                "aliases sorted and distinct"
            );
            for id in &e.mention_ids {
                assert!(seen.insert(id.clone()), "{id} is in two entities");
                let m = mentions
                    .iter()
                    .find(|m| &m.id == id)
                    .expect("known mention");
                assert_eq!(m.kind, e.kind, "entity {} mixes kinds", e.id);
            }
        }
        assert_eq!(
            seen.len(),
            mentions.len(),
            "every mention belongs to an entity"
        );
    }

    #[test]
    fn org_suffix_variants_and_the_bare_name_resolve_to_one_entity() {
        let ms = of_kind(
            EntityKind::Org,
            &[
                "Acme Corp.",
                "ACME Corporation",
                "Acme",
                "Acme, Inc.",
                "The Acme Company",
            ],
        );
        let entities = resolve(&ms);
        assert_partition(&ms, &entities);
        assert_eq!(entities.len(), 1, "{entities:#?}");
        assert_eq!(entities[0].name, "ACME Corporation");
        assert_eq!(
            entities[0].aliases,
            [
                "ACME Corporation",
                "Acme",
                "Acme Corp.",
                "Acme, Inc.",
                "The Acme Company"
            ]
        );
    }

    #[test]
    fn dotted_and_undotted_suffixes_are_the_same_suffix() {
        let ms = of_kind(
            EntityKind::Org,
            &["Baker L.L.C.", "Baker LLC", "Baker P.C."],
        );
        let entities = resolve(&ms);
        assert_partition(&ms, &entities);
        assert_eq!(
            alias_sets(&entities),
            [vec!["Baker L.L.C.", "Baker LLC", "Baker P.C."]]
        );
    }

    #[test]
    fn orgs_with_different_core_names_stay_separate() {
        let ms = of_kind(
            EntityKind::Org,
            &["Acme Corp.", "Acme Holdings LLC", "Company"],
        );
        let entities = resolve(&ms);
        assert_partition(&ms, &entities);
        assert_eq!(entities.len(), 3);
    }

    #[test]
    fn an_org_acronym_joins_its_only_long_form() {
        let ms = of_kind(
            EntityKind::Org,
            &["Acme Widgets Corporation", "AWC", "A.W.C.", "Beta LLC"],
        );
        let entities = resolve(&ms);
        assert_partition(&ms, &entities);
        assert_eq!(
            alias_sets(&entities),
            [
                vec!["A.W.C.", "AWC", "Acme Widgets Corporation"],
                vec!["Beta LLC"]
            ]
        );
        assert_eq!(entities[0].name, "Acme Widgets Corporation");
    }

    #[test]
    fn an_acronym_matches_initials_without_the_suffix_and_skips_stopwords() {
        let ms = of_kind(EntityKind::Org, &["Bank of Northern Trust, N.A.", "BNT"]);
        let entities = resolve(&ms);
        assert_eq!(entities.len(), 1, "{entities:#?}");
    }

    #[test]
    fn an_acronym_matching_two_long_forms_stays_alone() {
        let ms = of_kind(
            EntityKind::Org,
            &["Acme Widgets Corporation", "Apex Wire Company", "AWC"],
        );
        let entities = resolve(&ms);
        assert_partition(&ms, &entities);
        assert_eq!(entities.len(), 3);
    }

    #[test]
    fn honorifics_and_middle_initials_do_not_split_a_person() {
        let ms = of_kind(
            EntityKind::Person,
            &[
                "John A. Smith",
                "Mr. John Smith",
                "Dr. John Smith",
                "John Smith, Esq.",
                "Smith, John",
            ],
        );
        let entities = resolve(&ms);
        assert_partition(&ms, &entities);
        assert_eq!(entities.len(), 1, "{entities:#?}");
        assert_eq!(entities[0].name, "John Smith, Esq.");
    }

    #[test]
    fn a_surname_or_initials_join_the_only_full_name_with_that_surname() {
        let ms = of_kind(
            EntityKind::Person,
            &[
                "Jane Doe",
                "John Smith",
                "Smith",
                "J. Smith",
                "Judge Smith",
                "Ms. Doe",
                "J.D. Doe",
            ],
        );
        let entities = resolve(&ms);
        assert_partition(&ms, &entities);
        assert_eq!(
            alias_sets(&entities),
            [
                vec!["J.D. Doe", "Jane Doe", "Ms. Doe"],
                vec!["J. Smith", "John Smith", "Judge Smith", "Smith"],
            ]
        );
    }

    #[test]
    fn an_ambiguous_surname_stays_separate() {
        let ms = of_kind(
            EntityKind::Person,
            &["John Smith", "Mary Smith", "Smith", "Ms. Smith"],
        );
        let entities = resolve(&ms);
        assert_partition(&ms, &entities);
        assert_eq!(
            alias_sets(&entities),
            [
                vec!["John Smith"],
                vec!["Mary Smith"],
                vec!["Ms. Smith", "Smith"]
            ]
        );
    }

    #[test]
    fn an_initial_picks_the_full_name_it_fits() {
        let ms = of_kind(
            EntityKind::Person,
            &["John Smith", "Mary Smith", "M. Smith", "K. Smith"],
        );
        let entities = resolve(&ms);
        assert_partition(&ms, &entities);
        assert_eq!(
            alias_sets(&entities),
            [
                vec!["John Smith"],
                vec!["M. Smith", "Mary Smith"],
                vec!["K. Smith"]
            ]
        );
    }

    #[test]
    fn generational_suffixes_keep_father_and_son_apart() {
        let ms = of_kind(
            EntityKind::Person,
            &["John Smith Jr.", "John Smith", "Smith"],
        );
        let entities = resolve(&ms);
        assert_eq!(
            alias_sets(&entities),
            [vec!["John Smith Jr."], vec!["John Smith"], vec!["Smith"]]
        );
    }

    #[test]
    fn dates_and_amounts_merge_by_normalized_value() {
        let ms = mentions(&[
            (EntityKind::Date, "March 1, 2024", "2024-03-01"),
            (EntityKind::Date, "03/01/2024", "2024-03-01"),
            (EntityKind::Date, "March 2, 2024", "2024-03-02"),
            (EntityKind::Money, "$1,250,000", "USD 1250000.00"),
            (EntityKind::Money, "1.25 million dollars", "USD 1250000.00"),
            (EntityKind::Email, "J.Smith@Acme.com", "j.smith@acme.com"),
            (EntityKind::Email, "j.smith@acme.com", "j.smith@acme.com"),
            (EntityKind::Phone, "(212) 555-0100", "+12125550100"),
            (EntityKind::Phone, "212.555.0100", "+12125550100"),
        ]);
        let entities = resolve(&ms);
        assert_partition(&ms, &entities);
        assert_eq!(
            alias_sets(&entities),
            [
                vec!["03/01/2024", "March 1, 2024"],
                vec!["March 2, 2024"],
                vec!["$1,250,000", "1.25 million dollars"],
                vec!["J.Smith@Acme.com", "j.smith@acme.com"],
                vec!["(212) 555-0100", "212.555.0100"],
            ]
        );
    }

    #[test]
    fn statute_and_case_number_spelling_variants_merge() {
        let ms = mentions(&[
            (EntityKind::Statute, "42 U.S.C. § 1983", ""),
            (EntityKind::Statute, "42 USC Section 1983", ""),
            (EntityKind::Statute, "42 U.S.C. §1983", ""),
            (EntityKind::Statute, "42 U.S.C. Sec. 1983", ""),
            (EntityKind::Statute, "42 U.S.C. § 1985", ""),
            (EntityKind::Statute, "Cal. Civ. Code § 1542.1", ""),
            (EntityKind::Statute, "Cal Civ Code section 1542.1", ""),
            (EntityKind::CaseNumber, "Case No. 1:24-CV-01234", ""),
            (EntityKind::CaseNumber, "No. 1:24-cv-01234", ""),
            (EntityKind::CaseNumber, "1:24-cv-01234", ""),
            (EntityKind::CaseNumber, "1:24-cv-01235", ""),
        ]);
        let entities = resolve(&ms);
        assert_partition(&ms, &entities);
        let sizes: Vec<usize> = entities.iter().map(|e| e.mention_ids.len()).collect();
        assert_eq!(sizes, [4, 1, 2, 3, 1], "{entities:#?}");
    }

    #[test]
    fn courts_ignore_case_and_a_leading_the() {
        let ms = of_kind(
            EntityKind::Court,
            &[
                "the United States District Court for the Southern District of New York",
                "United States District Court for the Southern District of New York",
                "THE UNITED STATES DISTRICT COURT FOR THE SOUTHERN DISTRICT OF NEW YORK",
                "Supreme Court",
            ],
        );
        let entities = resolve(&ms);
        assert_partition(&ms, &entities);
        assert_eq!(entities.len(), 2);
        assert_eq!(entities[0].mention_ids, ["m0", "m1", "m2"]);
    }

    #[test]
    fn different_kinds_never_merge_even_with_identical_text() {
        let ms = mentions(&[
            (EntityKind::Person, "Jordan", "Jordan"),
            (EntityKind::Location, "Jordan", "Jordan"),
            (EntityKind::Org, "Jordan", "Jordan"),
            (EntityKind::Person, "Jordan", "Jordan"),
        ]);
        let entities = resolve(&ms);
        assert_partition(&ms, &entities);
        assert_eq!(entities.len(), 3);
        assert_eq!(entities[0].mention_ids, ["m0", "m3"]);
    }

    #[test]
    fn every_mention_belongs_to_exactly_one_entity() {
        let ms = mentions(&[
            (EntityKind::Org, "Acme Widgets Corporation", ""),
            (EntityKind::Person, "John A. Smith", ""),
            (EntityKind::Org, "AWC", ""),
            (EntityKind::Person, "Smith", ""),
            (EntityKind::Date, "March 1, 2024", "2024-03-01"),
            (EntityKind::Person, "Mary Smith", ""),
            (EntityKind::Org, "...", ""),
            (EntityKind::Person, "", ""),
            (EntityKind::Date, "03/01/2024", "2024-03-01"),
            (EntityKind::Statute, "§", ""),
        ]);
        let entities = resolve(&ms);
        assert_partition(&ms, &entities);
    }

    #[test]
    fn entities_are_ordered_by_first_mention_and_ids_are_deterministic() {
        let mut ms = of_kind(
            EntityKind::Org,
            &["Beta LLC", "Acme Corp.", "Beta", "Gamma Inc."],
        );
        // The extractor may hand mentions over out of text order.
        ms[0].start = 3;
        ms[3].start = 0;
        let a = resolve(&ms);
        let b = resolve(&ms);
        assert_eq!(a, b);
        let names: Vec<&str> = a.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["Gamma Inc.", "Beta LLC", "Acme Corp."]);
        let ids: Vec<&str> = a.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["e0", "e1", "e2"]);
        assert_eq!(a[1].mention_ids, ["m0", "m2"]);
    }

    #[test]
    fn name_ties_go_to_the_most_frequent_then_the_smallest_form() {
        let ms = of_kind(
            EntityKind::Org,
            &["ACME Corp", "Acme Corp", "Acme Corp", "Acme CORP"],
        );
        let entities = resolve(&ms);
        assert_eq!(entities[0].name, "Acme Corp");
        let ms = of_kind(EntityKind::Org, &["Acme Corp", "ACME Corp"]);
        assert_eq!(resolve(&ms)[0].name, "ACME Corp");
    }

    #[test]
    fn surface_forms_collapse_line_breaks() {
        let ms = of_kind(
            EntityKind::Org,
            &["Acme\nWidgets  Corp.", "Acme Widgets Corp."],
        );
        let entities = resolve(&ms);
        assert_eq!(entities[0].aliases, ["Acme Widgets Corp."]);
    }

    #[test]
    fn a_capitalised_caption_name_and_a_title_with_the_surname_join_the_full_name() {
        let mentions = of_kind(
            EntityKind::Person,
            &[
                "JANE Q. PUBLIC",
                "Jane Q. Public",
                "Governor Public",
                "Jane Public",
            ],
        );

        let entities = resolve(&mentions);

        assert_eq!(entities.len(), 1, "{:?}", alias_sets(&entities));
        assert_eq!(entities[0].mention_ids.len(), 4);
    }

    #[test]
    fn a_firm_with_and_without_its_llp_is_one_entity() {
        let mentions = of_kind(
            EntityKind::Org,
            &[
                "Kilpatrick Townsend & Stockton LLP",
                "KILPATRICK TOWNSEND & STOCKTON",
                "Kilpatrick Townsend and Stockton L.L.P.",
            ],
        );

        let entities = resolve(&mentions);

        assert_eq!(entities.len(), 1, "{:?}", alias_sets(&entities));
    }

    #[test]
    fn citations_merge_across_spacing_of_the_reporter() {
        let mentions = of_kind(EntityKind::Citation, &["550 U.S. 544", "550 U. S. 544"]);

        let entities = resolve(&mentions);

        assert_eq!(entities.len(), 1, "{:?}", alias_sets(&entities));
    }

    #[test]
    fn no_mentions_give_no_entities() {
        assert!(resolve(&[]).is_empty());
    }
}
