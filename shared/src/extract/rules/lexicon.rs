//! Built-in word lists (months, states, cities, words that are capitalised without being
//! names) and the regex fragments built from them.

use std::collections::HashSet;
use std::sync::LazyLock;

use regex::Regex;

/// Compiles a built-in pattern. The patterns are constants covered by tests, so a failure
/// is a programming error, reported with the offending pattern.
///
/// `\b` in these patterns means an **ASCII** word boundary: a Unicode one makes the lazy
/// DFA give up on any text with a non-ASCII character (`§`, `—`, `é`), which legal text
/// nearly always has, and the fallback engine is several times slower. Patterns that
/// start with a possibly non-ASCII capital (`\p{Lu}`) therefore carry no leading `\b`;
/// their callers check the character before the match instead.
pub(super) fn compile(pattern: &str) -> Regex {
    let pattern = &pattern.replace(r"\b", r"(?-u:\b)");
    match Regex::new(pattern) {
        Ok(re) => re,
        Err(e) => panic!("built-in extractor pattern does not compile: {e}\n{pattern}"),
    }
}

/// Month names and their accepted abbreviations, longest first within a month so that
/// regex alternation (leftmost-first) prefers `March` over `Mar`.
pub(super) const MONTH_PATTERN: &str = r"(?:January|February|March|April|May|June|July|August|September|October|November|December|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept|Sep|Oct|Nov|Dec)";

/// The month number (1–12) of a month name or abbreviation, any case.
pub(super) fn month_number(name: &str) -> Option<u32> {
    let lower = name.trim_end_matches('.').to_ascii_lowercase();
    let key = lower.get(..3)?;
    let n = match key {
        "jan" => 1,
        "feb" => 2,
        "mar" => 3,
        "apr" => 4,
        "may" => 5,
        "jun" => 6,
        "jul" => 7,
        "aug" => 8,
        "sep" => 9,
        "oct" => 10,
        "nov" => 11,
        "dec" => 12,
        _ => return None,
    };
    Some(n)
}

/// US states (and D.C.) with their postal codes.
pub(super) const STATES: &[(&str, &str)] = &[
    ("Alabama", "AL"),
    ("Alaska", "AK"),
    ("Arizona", "AZ"),
    ("Arkansas", "AR"),
    ("California", "CA"),
    ("Colorado", "CO"),
    ("Connecticut", "CT"),
    ("Delaware", "DE"),
    ("Florida", "FL"),
    ("Georgia", "GA"),
    ("Hawaii", "HI"),
    ("Idaho", "ID"),
    ("Illinois", "IL"),
    ("Indiana", "IN"),
    ("Iowa", "IA"),
    ("Kansas", "KS"),
    ("Kentucky", "KY"),
    ("Louisiana", "LA"),
    ("Maine", "ME"),
    ("Maryland", "MD"),
    ("Massachusetts", "MA"),
    ("Michigan", "MI"),
    ("Minnesota", "MN"),
    ("Mississippi", "MS"),
    ("Missouri", "MO"),
    ("Montana", "MT"),
    ("Nebraska", "NE"),
    ("Nevada", "NV"),
    ("New Hampshire", "NH"),
    ("New Jersey", "NJ"),
    ("New Mexico", "NM"),
    ("New York", "NY"),
    ("North Carolina", "NC"),
    ("North Dakota", "ND"),
    ("Ohio", "OH"),
    ("Oklahoma", "OK"),
    ("Oregon", "OR"),
    ("Pennsylvania", "PA"),
    ("Rhode Island", "RI"),
    ("South Carolina", "SC"),
    ("South Dakota", "SD"),
    ("Tennessee", "TN"),
    ("Texas", "TX"),
    ("Utah", "UT"),
    ("Vermont", "VT"),
    ("Virginia", "VA"),
    ("Washington", "WA"),
    ("West Virginia", "WV"),
    ("Wisconsin", "WI"),
    ("Wyoming", "WY"),
    ("District of Columbia", "DC"),
];

/// Major US cities recognised on their own. Cities that are also common first names or
/// surnames (Austin, Charlotte, Jackson, Madison, Lincoln) are left out: they are still
/// found in `City, ST` pairs and addresses.
#[rustfmt::skip]
pub(super) const CITIES: &[&str] = &[
    "New York City", "Los Angeles", "Chicago", "Houston", "Phoenix", "Philadelphia",
    "San Antonio", "San Diego", "Dallas", "San Jose", "Jacksonville", "Fort Worth",
    "Columbus", "San Francisco", "Indianapolis", "Seattle", "Denver", "Boston", "El Paso",
    "Nashville", "Detroit", "Oklahoma City", "Portland", "Las Vegas", "Memphis",
    "Louisville", "Baltimore", "Milwaukee", "Albuquerque", "Tucson", "Fresno",
    "Sacramento", "Kansas City", "Atlanta", "Omaha", "Colorado Springs", "Raleigh",
    "Miami", "Long Beach", "Virginia Beach", "Oakland", "Minneapolis", "Tulsa", "Tampa",
    "New Orleans", "Wichita", "Cleveland", "Bakersfield", "Honolulu", "Anaheim",
    "Pittsburgh", "Cincinnati", "St. Louis", "Saint Louis", "Newark", "Buffalo",
    "Palo Alto", "Mountain View", "Menlo Park", "Cupertino", "Santa Clara", "Berkeley",
    "Pasadena", "Irvine", "Santa Monica", "Brooklyn", "Manhattan", "Wilmington", "Trenton",
    "Hartford", "Providence", "Richmond", "Salt Lake City", "Boise", "Anchorage", "Albany",
    "Harrisburg", "Annapolis", "Stamford", "White Plains", "Redwood City", "San Mateo",
    "Sunnyvale", "Burbank",
];

/// `(?:Alabama|…)`: every state name, in title case and in upper case.
pub(super) fn state_name_pattern() -> String {
    let mut names: Vec<String> = Vec::new();
    for (name, _) in STATES {
        names.push(regex::escape(name).replace(' ', r"\s+"));
        names.push(regex::escape(&name.to_uppercase()).replace(' ', r"\s+"));
    }
    // Longest first, so that "West Virginia" wins over "Virginia" at the same start.
    names.sort_by_key(|n| std::cmp::Reverse(n.len()));
    format!("(?:{})", names.join("|"))
}

/// `(?:(?:AL|AK|…)\b|D\.C\.)`: every state postal code (and `D.C.`), ending on a word
/// boundary.
pub(super) fn state_code_pattern() -> String {
    let codes: Vec<&str> = STATES.iter().map(|(_, code)| *code).collect();
    format!(r"(?:(?:{})\b|D\.C\.)", codes.join("|"))
}

/// `(?:New York City|…)`: the city list, title case, longest first.
pub(super) fn city_pattern() -> String {
    let mut names: Vec<String> = CITIES.iter().map(|c| regex::escape(c)).collect();
    names.sort_by_key(|n| std::cmp::Reverse(n.len()));
    names.dedup();
    format!("(?:{})", names.join("|"))
}

/// Capitalised words that are not (parts of) personal names in legal text: roles,
/// document vocabulary, calendar words, sentence-starting function words, address and
/// organisation vocabulary. Compared in lower case.
#[rustfmt::skip]
const NOT_NAME_WORDS: &[&str] = &[
    // roles and parties
    "plaintiff", "plaintiffs", "defendant", "defendants", "petitioner", "petitioners",
    "respondent", "respondents", "appellant", "appellants", "appellee", "appellees",
    "claimant", "claimants", "debtor", "debtors", "creditor", "creditors", "movant",
    "employer", "employee", "employees", "buyer", "seller", "landlord", "tenant", "lessor",
    "lessee", "licensor", "licensee", "borrower", "lender", "guarantor", "contractor",
    "client", "customer", "vendor", "supplier", "purchaser", "party", "parties", "counsel",
    "attorney", "attorneys", "judge", "justice", "justices", "magistrate", "honorable",
    "clerk", "witness", "deponent", "notary", "court", "courts", "jury", "juror",
    "officer", "officers", "director", "directors", "president", "secretary", "treasurer",
    "chief", "executive", "manager", "chairman", "chair", "vice", "senior", "associate",
    "managing", "partner", "partners", "member", "members", "trustee", "receiver", "agent",
    "sheriff", "police", "mayor", "governor", "esq", "esquire", "hon", "mr", "ms", "mrs",
    "dr", "prof", "sir", "madam", "general", "special", "representative",
    "representatives", "inventor", "administrator", "executor", "guardian", "class",
    "individual",
    // document vocabulary
    "agreement", "agreements", "section", "sections", "article", "paragraph", "clause",
    "exhibit", "exhibits", "schedule", "appendix", "annex", "addendum", "amendment",
    "title", "chapter", "part", "page", "pages", "line", "lines", "case", "cases", "count",
    "counts", "claim", "claims", "cause", "causes", "action", "actions", "motion", "order",
    "orders", "complaint", "answer", "reply", "response", "request", "requests", "notice",
    "subpoena", "petition", "brief", "memorandum", "declaration", "affidavit",
    "stipulation", "stipulated", "proposed", "judgment", "summary", "opposition", "points",
    "authorities", "introduction", "background", "facts", "fact", "discussion",
    "conclusion", "argument", "statement", "statements", "relief", "prayer", "demand",
    "jurisdiction", "venue", "allegations", "definitions", "recitals", "witnesseth",
    "whereas", "now", "therefore", "term", "termination", "payment", "payments",
    "confidential", "confidentiality", "settlement", "release", "lease", "contract",
    "license", "employment", "services", "service", "compensation", "benefits",
    "deposition", "transcript", "hearing", "trial", "record", "docket", "filed", "dated",
    "date", "effective", "executed", "signature", "signed", "name", "names", "by", "its",
    "hereby", "herein", "thereof", "proceedings", "examination", "direct", "cross",
    "redirect", "index", "table", "contents", "certificate", "certification",
    "verification", "proof", "report", "reporter", "certified", "shorthand", "volume",
    "negligence", "breach", "fraud", "damages", "injunctive", "declaratory", "punitive",
    "civil", "criminal", "procedure", "procedures", "evidence", "rule", "rules", "code",
    "law", "laws", "act", "acts", "statute", "regulation", "regulations", "constitution",
    "amendments", "professions", "business", "government", "labor", "penal", "revenue",
    "internal", "securities", "exchange", "commission", "federal", "state", "states",
    "united", "america", "american", "national", "international", "global", "district",
    "northern", "southern", "eastern", "western", "central", "middle", "circuit",
    "appeals", "appeal", "supreme", "superior", "chancery", "bankruptcy", "county", "city",
    "town", "village", "commonwealth", "people", "nation", "republic", "north", "south",
    "east", "west", "first", "second", "third", "fourth", "fifth", "sixth", "seventh",
    "eighth", "ninth", "tenth", "eleventh", "twelfth", "last", "final", "amended",
    "original", "new", "old", "total", "annual", "monthly", "base", "salary", "bonus",
    "stock", "shares", "equity", "company", "companies", "corporation", "corp", "inc",
    "incorporated", "llc", "llp", "ltd", "limited", "co", "lp", "plc", "pc", "pllc",
    "gmbh", "bank", "trust", "holdings", "group", "association", "foundation", "institute",
    "university", "college", "school", "hospital", "center", "centre", "agency", "bureau",
    "department", "office", "board", "council", "committee", "authority", "capital",
    "financial", "insurance", "technologies", "technology", "solutions", "systems",
    "industries", "enterprises", "ventures", "management", "consulting", "labs", "media",
    "health", "medical", "pharmaceuticals", "energy", "motors", "logistics", "software",
    "data", "network", "networks", "products", "property", "properties", "realty",
    "estate", "development", "construction", "investments", "fund", "funds", "markets",
    "market", "union", "federation", "society", "street", "avenue", "road", "boulevard",
    "drive", "lane", "way", "place", "plaza", "suite", "floor", "building", "tower",
    "square", "parkway", "highway", "route", "box", "room", "unit", "apartment", "po",
    "zip", "telephone", "phone", "facsimile", "fax", "email", "tel", "mobile",
    // calendar
    "january", "february", "march", "april", "may", "june", "july", "august", "september",
    "october", "november", "december", "jan", "feb", "mar", "apr", "jun", "jul", "aug",
    "sep", "sept", "oct", "nov", "dec", "monday", "tuesday", "wednesday", "thursday",
    "friday", "saturday", "sunday", "day", "days", "week", "month", "year", "years",
    "today", "spring", "summer", "fall", "autumn", "winter",
    // function words and sentence starters
    "the", "a", "an", "this", "that", "these", "those", "such", "said", "each", "every",
    "any", "all", "both", "either", "neither", "no", "not", "none", "and", "or", "but",
    "nor", "if", "in", "on", "at", "for", "from", "to", "of", "with", "without", "as",
    "upon", "under", "within", "after", "before", "during", "between", "among", "against",
    "about", "above", "below", "into", "onto", "over", "through", "throughout", "until",
    "unless", "when", "where", "whereby", "which", "who", "whom", "whose", "what", "why",
    "how", "while", "because", "since", "although", "though", "despite", "following",
    "further", "furthermore", "moreover", "additionally", "accordingly", "finally",
    "however", "thus", "hence", "also", "only", "other", "others", "another", "here",
    "there", "it", "he", "she", "they", "we", "you", "i", "his", "her", "their", "our",
    "my", "your", "me", "him", "them", "us", "is", "was", "were", "are", "be", "been",
    "has", "have", "had", "do", "does", "did", "will", "shall", "must", "can", "could",
    "would", "should", "yes", "ok", "okay", "q", "dear", "sincerely", "respectfully",
    "submitted", "very", "truly", "yours", "regards", "please", "thank", "thanks", "re",
    "subject", "attention", "attn", "cc", "bcc", "enclosed", "attached", "see", "cf", "id",
    "ibid", "supra", "infra", "et", "al", "seq", "pursuant", "notwithstanding", "except",
    "including", "provided", "per", "via", "vs", "versus", "sworn", "subscribed",
    "approved", "accepted", "agreed", "acknowledged", "received", "granted", "denied",
    "ordered", "adjudged", "decreed", "dismissed", "plaintiff's", "defendant's", "court's",
    "company's", "employee's", "employer's", "legal", "english", "dollars", "usd",
    "unknown", "miscellaneous", "governing", "entire", "severability", "assignment",
    "waiver", "notices", "counterparts", "headings", "representations", "warranties",
    "indemnification", "remedies", "arbitration", "mediation", "discovery",
    "interrogatories", "interrogatory", "admissions", "production", "documents",
    "document", "objections", "objection", "privilege", "privileged", "work", "product",
    "trade", "secrets", "intellectual", "patent", "trademark", "copyright", "non",
    "competition", "solicitation", "disclosure", "information", "retaliation",
    "discrimination", "harassment", "wrongful", "unfair", "unjust", "enrichment",
    "fiduciary", "duty", "implied", "covenant", "good", "faith", "dealing", "intentional",
    "infliction", "emotional", "distress", "violation", "violations", "demanded", "costs",
    "fees", "interest", "exemplary", "compensatory", "consequential", "liquidated",
    "nominal", "equitable", "temporary", "restraining", "preliminary", "permanent",
    "injunction", "liability", "limitation",
];

static NOT_NAME_SET: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| NOT_NAME_WORDS.iter().copied().collect());

/// True if `word` (any case, trailing `.`/`,`/`:` ignored) is a capitalised word that is
/// not part of a personal name.
pub(super) fn is_not_name_word(word: &str) -> bool {
    let w = word.trim_end_matches(['.', ',', ':', ';']).to_lowercase();
    let w = w
        .strip_suffix("'s")
        .or_else(|| w.strip_suffix("’s"))
        .unwrap_or(&w);
    NOT_NAME_SET.contains(w)
}

/// Words that commonly precede a name at the start of a sentence or clause and must not
/// be swallowed into an ORG, COURT or LOCATION name: "The", "Plaintiff", "Defendant",
/// "By", …. Compared in lower case.
#[rustfmt::skip]
const LEADING_NOISE: &[&str] = &[
    "the", "a", "an", "this", "that", "these", "those", "such", "said", "each", "any",
    "all", "both", "plaintiff", "plaintiffs", "defendant", "defendants", "petitioner",
    "petitioners", "respondent", "respondents", "appellant", "appellee", "claimant",
    "debtor", "creditor", "movant", "by", "between", "and", "or", "of", "to", "from",
    "for", "with", "against", "in", "on", "at", "as", "if", "when", "whereas", "dated",
    "re", "attn", "attention", "cc", "counsel", "see", "cf", "under", "pursuant", "upon",
    "after", "before", "during", "because", "since", "while", "although", "including",
    "employer", "employee", "company", "buyer", "seller", "landlord", "tenant", "lessor",
    "lessee", "licensor", "licensee", "borrower", "lender", "guarantor", "contractor",
    "client", "customer", "vendor", "supplier", "purchaser", "party", "parties", "also",
    "only", "then", "thereafter", "therefore", "however", "moreover", "further",
    "furthermore", "accordingly", "finally", "here", "there", "it", "its", "his", "her",
    "their", "our", "your", "my", "he", "she", "they", "we", "you", "i", "is", "was",
    "were", "are", "be", "has", "have", "had", "will", "shall", "may", "must", "can",
    "notice", "exhibit", "witness", "signed", "name", "title", "subject", "nominal",
    "intervenor", "third-party", "counter-defendant", "counter-plaintiff",
    "cross-defendant", "dear", "sincerely", "respectfully", "submitted", "very", "truly",
    "yours", "thank", "please", "no", "not", "per", "via", "vs", "v", "et", "al", "inc",
    "llc", "corp", "co", "ltd", "llp", "n.a",
];

static LEADING_NOISE_SET: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| LEADING_NOISE.iter().copied().collect());

/// True if `word` (any case, trailing punctuation ignored) is a sentence-starting or role
/// word that must not begin an ORG/COURT/LOCATION name.
pub(super) fn is_leading_noise(word: &str) -> bool {
    let w = word.trim_end_matches(['.', ',', ':', ';']).to_lowercase();
    let w = w
        .strip_suffix("'s")
        .or_else(|| w.strip_suffix("’s"))
        .unwrap_or(&w);
    LEADING_NOISE_SET.contains(w)
}

/// Common given names (US, Hispanic, European, South Asian, East Asian, African, Arabic),
/// lower case without accents. The bare capitalised-name heuristic only trusts a run of
/// words that starts with one of these (or that other evidence supports): without it,
/// title-case headings and defined terms ("Security Deposit", "Excessive Force") would
/// read as names. Words that are more often ordinary words ("Will", "Grace", "Chase",
/// "June") are left out.
#[rustfmt::skip]
const GIVEN_NAMES: &[&str] = &[
    "aaron", "abdul", "abigail", "adam", "adrian", "adriana", "ahmed", "aisha", "alan",
    "albert", "alberto", "alejandro", "alex", "alexander", "alexandra", "alexis", "alfred",
    "alfredo", "ali", "alice", "alicia", "alison", "allison", "alma", "amanda", "amber",
    "amir", "amit", "amy", "ana", "andre", "andrea", "andrew", "andy", "angela",
    "angelica", "angelo", "anita", "ann", "anna", "anne", "annette", "anthony", "antonio",
    "arjun", "arthur", "arturo", "ashley", "audrey", "barbara", "beatriz", "benjamin",
    "bernard", "beth", "betty", "beverly", "bianca", "bob", "bonnie", "brad", "bradley",
    "brandon", "brenda", "brian", "bruce", "bryan", "camila", "carl", "carla", "carlos",
    "carmen", "carol", "caroline", "carolyn", "catherine", "cecilia", "charles",
    "charlotte", "chen", "cheryl", "chris", "christian", "christina", "christine",
    "christopher", "cindy", "claire", "clara", "claudia", "colin", "connor", "craig",
    "cristina", "crystal", "cynthia", "daniel", "daniela", "danielle", "david", "deborah",
    "debra", "denise", "dennis", "derek", "diana", "diane", "diego", "dmitri", "dolores",
    "donald", "donna", "doris", "dorothy", "douglas", "duc", "dylan", "edgar", "eduardo",
    "edward", "eileen", "elena", "elijah", "elizabeth", "ellen", "emily", "emma",
    "enrique", "eric", "erica", "erik", "erin", "esther", "ethan", "eugene", "eva",
    "evelyn", "fatima", "felipe", "fernando", "fiona", "frances", "francis", "francisco",
    "frank", "gabriel", "gabriela", "gary", "george", "gerald", "gloria", "gregory",
    "guillermo", "hannah", "harold", "harry", "heather", "hector", "helen", "henry",
    "hiroshi", "hugo", "hui", "ian", "ibrahim", "ignacio", "irene", "isaac", "isabel",
    "isabella", "ivan", "jack", "jacob", "jacqueline", "james", "jamal", "jane", "janet",
    "janice", "jared", "jason", "javier", "jean", "jeffrey", "jennifer", "jeremy",
    "jerome", "jerry", "jesse", "jessica", "jesus", "jill", "jin", "joan", "joanne", "joe",
    "joel", "john", "jonathan", "jorge", "jose", "joseph", "joshua", "joyce", "juan",
    "judith", "judy", "julia", "julian", "julie", "justin", "kai", "karen", "katherine",
    "kathleen", "kathryn", "kathy", "keith", "kelly", "kenji", "kenneth", "kevin",
    "kimberly", "kwame", "kyle", "laura", "lauren", "lawrence", "leah", "lee", "leon",
    "leonard", "leslie", "li", "lillian", "linda", "lisa", "lois", "lorena", "lori",
    "louis", "lucas", "lucia", "luis", "luz", "madeline", "manuel", "marcus", "margaret",
    "maria", "marie", "marilyn", "mario", "marisol", "marissa", "mark", "marta", "martha",
    "martin", "mary", "mateo", "matthew", "maya", "megan", "mei", "melissa", "michael",
    "michelle", "miguel", "mildred", "ming", "mohamed", "mohammed", "monica", "nancy",
    "naomi", "natalie", "nathan", "neil", "nicholas", "nicole", "nina", "noah", "nora",
    "olivia", "omar", "oscar", "pablo", "pamela", "patricia", "patrick", "paul", "paula",
    "pedro", "peter", "philip", "phillip", "pooja", "priya", "rachel", "rafael", "rahul",
    "ralph", "ramon", "randy", "raul", "ravi", "raymond", "rebecca", "regina", "ricardo",
    "richard", "rita", "robert", "roberto", "robin", "roger", "ronald", "rosa", "ruth",
    "ryan", "samantha", "samuel", "sandra", "sanjay", "sara", "sarah", "scott", "sean",
    "sergio", "sharon", "shirley", "sofia", "sophia", "stephanie", "stephen", "steven",
    "susan", "tamara", "teresa", "terry", "theresa", "thomas", "timothy", "tina", "todd",
    "tom", "tony", "tracy", "tyler", "valerie", "vanessa", "veronica", "victor",
    "victoria", "vincent", "virginia", "walter", "wei", "wendy", "william", "xavier",
    "yasmin", "yolanda", "yuki", "yusuf", "zachary", "zoe",
];

static GIVEN_NAME_SET: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| GIVEN_NAMES.iter().copied().collect());

/// True if `word` (any case, accents ignored) is a common given name.
pub(super) fn is_given_name(word: &str) -> bool {
    GIVEN_NAME_SET.contains(fold(word).as_str())
}

/// Lower case with the accents of Latin letters removed (`José` → `jose`).
pub(super) fn fold(word: &str) -> String {
    word.chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'á' | 'à' | 'â' | 'ä' | 'ã' | 'å' => 'a',
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'í' | 'ì' | 'î' | 'ï' => 'i',
            'ó' | 'ò' | 'ô' | 'ö' | 'õ' | 'ø' => 'o',
            'ú' | 'ù' | 'û' | 'ü' => 'u',
            'ñ' => 'n',
            'ç' => 'c',
            other => other,
        })
        .collect()
}
