//! Behaviour of the rule-based extractor, one rule family at a time, then the properties
//! every output must have (character offsets, order, no overlaps, determinism).

use super::RuleExtractor;
use crate::model::{EntityKind, RawMention};

use EntityKind::*;

/// Extracts and checks the invariants every output must satisfy.
fn extract(text: &str) -> Vec<RawMention> {
    let mentions = RuleExtractor::new().extract(text);
    let chars: Vec<char> = text.chars().collect();
    for m in &mentions {
        assert!(m.start < m.end && m.end <= chars.len(), "bad span {m:?}");
        let slice: String = chars[m.start..m.end].iter().collect();
        assert_eq!(slice, m.text, "text is not the characters at start..end");
        assert!(
            (0.0..=1.0).contains(&m.confidence),
            "confidence out of range: {m:?}"
        );
        assert!(!m.normalized.is_empty(), "empty normalised value: {m:?}");
    }
    for pair in mentions.windows(2) {
        assert!(pair[0].start <= pair[1].start, "not sorted: {pair:?}");
        assert!(pair[0].end <= pair[1].start, "overlap: {pair:?}");
    }
    mentions
}

/// `(kind, text)` of every mention.
fn found(text: &str) -> Vec<(EntityKind, String)> {
    extract(text)
        .into_iter()
        .map(|m| (m.kind, m.text))
        .collect()
}

/// Texts of the mentions of one kind.
fn texts_of(text: &str, kind: EntityKind) -> Vec<String> {
    extract(text)
        .into_iter()
        .filter(|m| m.kind == kind)
        .map(|m| m.text)
        .collect()
}

/// The mention of `kind` whose text is exactly `expected`; fails listing what was found.
fn mention(text: &str, kind: EntityKind, expected: &str) -> RawMention {
    let mentions = extract(text);
    match mentions
        .iter()
        .find(|m| m.kind == kind && m.text == expected)
    {
        Some(m) => m.clone(),
        None => panic!(
            "no {kind} {expected:?} in {text:?}; found {:?}",
            found(text)
        ),
    }
}

fn normalized(text: &str, kind: EntityKind, expected: &str) -> String {
    mention(text, kind, expected).normalized
}

// ---------------------------------------------------------------------------------------
// EMAIL and PHONE
// ---------------------------------------------------------------------------------------

#[test]
fn finds_email_and_normalises_it_to_lower_case() {
    let text = "Contact GLindqvist@AlderBay.example.org for details.";
    let m = mention(text, Email, "GLindqvist@AlderBay.example.org");
    assert_eq!(m.normalized, "glindqvist@alderbay.example.org");
    assert!(m.confidence >= 0.95);
}

#[test]
fn leaves_a_sentence_final_period_out_of_an_email() {
    assert_eq!(
        texts_of("Write to jane.roe@roelaw.com.", Email),
        ["jane.roe@roelaw.com"]
    );
}

#[test]
fn finds_no_email_without_a_domain() {
    let text = "Meet @ noon; write to admin@localhost or to a@b.";
    assert!(texts_of(text, Email).is_empty(), "found {:?}", found(text));
}

#[test]
fn finds_phone_numbers_in_common_us_formats() {
    let text = "Tel. (415) 555-0142; cell 415-555-0142; fax 415.555.0142; intl +1 415 555 0142.";
    let phones = extract(text)
        .into_iter()
        .filter(|m| m.kind == Phone)
        .collect::<Vec<_>>();
    let texts: Vec<&str> = phones.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(
        texts,
        [
            "(415) 555-0142",
            "415-555-0142",
            "415.555.0142",
            "+1 415 555 0142"
        ]
    );
    assert!(phones.iter().all(|m| m.normalized == "+14155550142"));
}

#[test]
fn finds_no_phone_inside_case_numbers_dates_or_money() {
    let text = "Case No. 3:24-cv-01234-JST, docket 1:23-cr-00456, index 654-321-9876/2023, \
                filed 2024-03-04 and 03/04/2024, paid $415,555,0142.00, ZIP 94103-1234.";
    assert!(texts_of(text, Phone).is_empty(), "found {:?}", found(text));
}

// ---------------------------------------------------------------------------------------
// DATE
// ---------------------------------------------------------------------------------------

#[test]
fn finds_written_dates_and_normalises_them_to_iso() {
    let text = "Signed March 4, 2024, served 4 March 2024, heard Mar. 5, 2024 and MARCH 6, 2024.";
    assert_eq!(normalized(text, Date, "March 4, 2024"), "2024-03-04");
    assert_eq!(normalized(text, Date, "4 March 2024"), "2024-03-04");
    assert_eq!(normalized(text, Date, "Mar. 5, 2024"), "2024-03-05");
    assert_eq!(normalized(text, Date, "MARCH 6, 2024"), "2024-03-06");
}

#[test]
fn finds_numeric_dates_in_us_and_iso_order() {
    let text = "Filed 03/04/2024; entered 2024-03-07.";
    assert_eq!(normalized(text, Date, "03/04/2024"), "2024-03-04");
    assert_eq!(normalized(text, Date, "2024-03-07"), "2024-03-07");
}

#[test]
fn finds_formal_day_of_month_dates_without_the_article() {
    let text = "Executed this 4th day of March, 2024, at San Francisco.";
    assert_eq!(
        normalized(text, Date, "4th day of March, 2024"),
        "2024-03-04"
    );
}

#[test]
fn takes_a_weekday_and_a_line_break_inside_a_date() {
    let text = "Taken on Tuesday, January 28, 2025, at 10:02 a.m. Heard on September 19,\n2024.";
    assert_eq!(
        normalized(text, Date, "Tuesday, January 28, 2025"),
        "2025-01-28"
    );
    assert_eq!(normalized(text, Date, "September 19,\n2024"), "2024-09-19");
}

#[test]
fn finds_month_and_year_as_a_partial_iso_date() {
    assert_eq!(
        normalized("Since March 2024 she has worked there.", Date, "March 2024"),
        "2024-03"
    );
}

#[test]
fn rejects_impossible_dates() {
    let text = "February 30, 2024; 2023-02-29; 13/45/2024; 31 April 2024.";
    assert!(texts_of(text, Date).is_empty(), "found {:?}", found(text));
    assert_eq!(
        normalized("Leap day: February 29, 2024.", Date, "February 29, 2024"),
        "2024-02-29"
    );
}

#[test]
fn does_not_read_the_verb_may_as_a_month() {
    assert!(texts_of("the parties may 10, 2024 be bound", Date).is_empty());
}

// ---------------------------------------------------------------------------------------
// MONEY
// ---------------------------------------------------------------------------------------

#[test]
fn finds_dollar_amounts_and_normalises_them_to_code_and_cents() {
    let text = "Damages of $250,000, wages of $1,250,000.00 and expenses of $18,460.72.";
    assert_eq!(normalized(text, Money, "$250,000"), "USD 250000.00");
    assert_eq!(normalized(text, Money, "$1,250,000.00"), "USD 1250000.00");
    assert_eq!(normalized(text, Money, "$18,460.72"), "USD 18460.72");
}

#[test]
fn scales_amounts_written_with_million_or_billion() {
    let text = "A fine of $2.5 million and a cap of USD 1.25 billion.";
    assert_eq!(normalized(text, Money, "$2.5 million"), "USD 2500000.00");
    assert_eq!(
        normalized(text, Money, "USD 1.25 billion"),
        "USD 1250000000.00"
    );
}

#[test]
fn finds_currency_codes_words_and_other_symbols() {
    let text = "Fees of USD 4,500, a deposit of 250,000 dollars, a penalty of €10,000 and £3.50.";
    assert_eq!(normalized(text, Money, "USD 4,500"), "USD 4500.00");
    assert_eq!(normalized(text, Money, "250,000 dollars"), "USD 250000.00");
    assert_eq!(normalized(text, Money, "€10,000"), "EUR 10000.00");
    assert_eq!(normalized(text, Money, "£3.50"), "GBP 3.50");
}

#[test]
fn finds_no_money_in_plain_numbers_and_percentages() {
    let text = "Interest at 1.5% on 2,150 square feet for 30 days.";
    assert!(texts_of(text, Money).is_empty(), "found {:?}", found(text));
}

// ---------------------------------------------------------------------------------------
// CASE_NUMBER
// ---------------------------------------------------------------------------------------

#[test]
fn finds_federal_docket_numbers_with_judge_initials() {
    let text = "Case No. 3:24-cv-01234-JST, related to 1:23-cr-00456.";
    assert_eq!(
        texts_of(text, CaseNumber),
        ["3:24-cv-01234-JST", "1:23-cr-00456"]
    );
}

#[test]
fn takes_the_number_and_not_the_case_no_label() {
    let m = mention(
        "See Case No. 24-1234 (consolidated).",
        CaseNumber,
        "24-1234",
    );
    assert_eq!(m.start, "See Case No. ".len());
}

#[test]
fn finds_state_case_number_forms() {
    let text = "Filed as CGC-24-512345, later No. 2023-CV-004512 and Index No. 654321/2023.";
    assert_eq!(
        texts_of(text, CaseNumber),
        ["CGC-24-512345", "2023-CV-004512", "654321/2023"]
    );
}

#[test]
fn does_not_take_request_or_exhibit_numbers_for_case_numbers() {
    let text = "Request No. 3, Exhibit No. 12 and ECF No. 18 are attached. CSR No. 14872.";
    assert!(
        texts_of(text, CaseNumber).is_empty(),
        "found {:?}",
        found(text)
    );
}

// ---------------------------------------------------------------------------------------
// STATUTE
// ---------------------------------------------------------------------------------------

#[test]
fn finds_usc_citation_with_section_sign() {
    let text = "Claims arise under 42 U.S.C. § 1983 and 15 U.S.C. § 78j(b).";
    assert_eq!(
        texts_of(text, Statute),
        ["42 U.S.C. § 1983", "15 U.S.C. § 78j(b)"]
    );
    assert_eq!(
        normalized("under 42 U.S.C.\n§ 1983.", Statute, "42 U.S.C.\n§ 1983"),
        "42 U.S.C. § 1983"
    );
}

#[test]
fn takes_a_plural_section_list_whole() {
    let text = "Jurisdiction lies under 28 U.S.C. §§ 1331 and 1343.";
    assert_eq!(texts_of(text, Statute), ["28 U.S.C. §§ 1331 and 1343"]);
}

#[test]
fn ends_a_section_list_before_the_next_citation_or_prose() {
    let text = "Under 28 U.S.C. §§ 1331 and 1343 and 42 U.S.C. § 1983; under 28 U.S.C. § 1331 and \
                1343(a)(3), and within 42 U.S.C. § 1983 and 28 days.";
    assert_eq!(
        texts_of(text, Statute),
        [
            "28 U.S.C. §§ 1331 and 1343",
            "42 U.S.C. § 1983",
            "28 U.S.C. § 1331",
            "42 U.S.C. § 1983"
        ]
    );
}

#[test]
fn finds_federal_rules_abbreviated_and_spelled_out() {
    let text = "Under Fed. R. Civ. P. 12(b)(6), Federal Rule of Civil Procedure 56, Fed. R. Evid. 702 \
                and Rule 15(a)(2) of the Federal Rules of Civil Procedure.";
    assert_eq!(
        texts_of(text, Statute),
        [
            "Fed. R. Civ. P. 12(b)(6)",
            "Federal Rule of Civil Procedure 56",
            "Fed. R. Evid. 702",
            "Rule 15(a)(2) of the Federal Rules of Civil Procedure",
        ]
    );
}

#[test]
fn finds_state_code_and_regulation_citations() {
    let text = "Violations of Cal. Bus. & Prof. Code § 17200 et seq., Cal. Civ. Code § 1542 and \
                29 C.F.R. § 1604.11.";
    assert_eq!(
        texts_of(text, Statute),
        [
            "Cal. Bus. & Prof. Code § 17200",
            "Cal. Civ. Code § 1542",
            "29 C.F.R. § 1604.11"
        ]
    );
}

#[test]
fn finds_the_california_code_of_civil_procedure_in_both_styles() {
    let text = "A motion under Cal. Code Civ. Proc. § 425.16 or California Code of Civil Procedure \
                section 425.16.";
    assert_eq!(
        texts_of(text, Statute),
        [
            "Cal. Code Civ. Proc. § 425.16",
            "California Code of Civil Procedure section 425.16",
        ]
    );
}

#[test]
fn finds_a_section_of_a_named_act_and_an_act_with_its_codification() {
    let text = "Section 10(b) of the Securities Exchange Act of 1934 applies, as does the Defend \
                Trade Secrets Act, 18 U.S.C. § 1836.";
    assert_eq!(
        texts_of(text, Statute),
        [
            "Section 10(b) of the Securities Exchange Act of 1934",
            "Defend Trade Secrets Act, 18 U.S.C. § 1836",
        ]
    );
}

#[test]
fn finds_case_law_citations_without_introductory_signals() {
    let text = "See Graham v. Connor, 490 U.S. 386 (1989). The Court agrees. Bell Atlantic Corp. v. \
                Twombly, 550 U.S. 544, 570 (2007); Iqbal, 556 U.S. at 678.";
    assert_eq!(
        texts_of(text, Citation),
        [
            "Graham v. Connor, 490 U.S. 386 (1989)",
            "Bell Atlantic Corp. v. Twombly, 550 U.S. 544, 570 (2007)",
            "Iqbal, 556 U.S. at 678",
        ]
    );
}

#[test]
fn finds_in_re_citations_and_parties_with_corporate_suffixes() {
    let text = "See In re Checking Account Overdraft Litig., 275 F.R.D. 666 (S.D. Fla. 2011); \
                Gutierrez v. Wells Fargo Bank, N.A., 704 F.3d 712 (9th Cir. 2012).";
    assert_eq!(
        texts_of(text, Citation),
        [
            "In re Checking Account Overdraft Litig., 275 F.R.D. 666 (S.D. Fla. 2011)",
            "Gutierrez v. Wells Fargo Bank, N.A., 704 F.3d 712 (9th Cir. 2012)",
        ]
    );
}

#[test]
fn does_not_cite_a_bare_defined_act() {
    let text = "The Act requires notice. This Act applies.";
    assert!(
        texts_of(text, Statute).is_empty(),
        "found {:?}",
        found(text)
    );
}

// ---------------------------------------------------------------------------------------
// COURT
// ---------------------------------------------------------------------------------------

#[test]
fn finds_federal_court_names() {
    let text = "Filed in the United States District Court for the Northern District of California, \
                then the U.S. District Court, S.D.N.Y., the United States Court of Appeals for the \
                Ninth Circuit and the Supreme Court of the United States.";
    assert_eq!(
        texts_of(text, Court),
        [
            "United States District Court for the Northern District of California",
            "U.S. District Court, S.D.N.Y.",
            "United States Court of Appeals for the Ninth Circuit",
            "Supreme Court of the United States",
        ]
    );
}

#[test]
fn joins_an_upper_case_caption_court_with_its_district_line() {
    let text = "UNITED STATES DISTRICT COURT\nNORTHERN DISTRICT OF CALIFORNIA\n\nJANE ROE,";
    let m = mention(
        text,
        Court,
        "UNITED STATES DISTRICT COURT\nNORTHERN DISTRICT OF CALIFORNIA",
    );
    assert_eq!(
        m.normalized,
        "UNITED STATES DISTRICT COURT NORTHERN DISTRICT OF CALIFORNIA"
    );
}

#[test]
fn finds_state_courts_with_their_county_and_emits_no_location_inside() {
    let text = "Superior Court of the State of California, County of San Francisco, and the Court of \
                Chancery of the State of Delaware.";
    assert_eq!(
        found(text),
        [
            (
                Court,
                "Superior Court of the State of California, County of San Francisco".into()
            ),
            (Court, "Court of Chancery of the State of Delaware".into()),
        ]
    );
}

#[test]
fn does_not_take_a_generic_superior_court_for_a_named_one() {
    assert!(texts_of("The Superior Court denied the motion.", Court).is_empty());
}

// ---------------------------------------------------------------------------------------
// ORG
// ---------------------------------------------------------------------------------------

#[test]
fn finds_organisations_ending_in_a_legal_suffix() {
    let text = "Counsel at Smith & Wesson LLP wrote to Acme Widgets, Inc., Bank of America, N.A. and \
                Wells Fargo Bank, N.A. about ACME CORPORATION.";
    assert_eq!(
        texts_of(text, Org),
        [
            "Smith & Wesson LLP",
            "Acme Widgets, Inc.",
            "Bank of America, N.A.",
            "Wells Fargo Bank, N.A.",
            "ACME CORPORATION",
        ]
    );
}

#[test]
fn does_not_swallow_sentence_start_or_role_words_into_an_organisation() {
    let text = "The Acme Company sued. Defendant Beta Holdings LLC answered. By Gamma Corp. \
                Plaintiff Delta Inc. appealed.";
    assert_eq!(
        texts_of(text, Org),
        [
            "Acme Company",
            "Beta Holdings LLC",
            "Gamma Corp.",
            "Delta Inc."
        ]
    );
}

#[test]
fn separates_two_companies_joined_by_and() {
    let text = "between Northwind LLC and Bluefin Logistics LLC, and Jane Roe and Acme Corp.";
    assert_eq!(
        texts_of(text, Org),
        ["Northwind LLC", "Bluefin Logistics LLC", "Acme Corp."]
    );
}

#[test]
fn finds_law_firms_with_commas_and_ampersand_company_names() {
    let text = "Harlan, Bishop & Greer LLP advised Goldman Sachs & Co. LLC and J.P. Morgan Chase & Co.; \
                Jane Roe, Stanford University, testified.";
    assert_eq!(
        texts_of(text, Org),
        [
            "Harlan, Bishop & Greer LLP",
            "Goldman Sachs & Co. LLC",
            "J.P. Morgan Chase & Co.",
            "Stanford University",
        ]
    );
}

#[test]
fn finds_each_organisation_of_a_list_joined_by_and() {
    let text = "Wesley Chapel Holdings and Sunrise Senior Living, LLC settled.";
    assert_eq!(
        texts_of(text, Org),
        ["Wesley Chapel Holdings", "Sunrise Senior Living, LLC"]
    );
}

#[test]
fn leaves_a_description_before_of_out_of_a_company_name() {
    let text = "The Board of Directors of Orion Robotics, Inc. issued Preferred Stock of \
                Helios Labs, Inc. to Bank of America Corporation.";
    assert_eq!(
        texts_of(text, Org),
        [
            "Orion Robotics, Inc.",
            "Helios Labs, Inc.",
            "Bank of America Corporation"
        ]
    );
}

#[test]
fn does_not_take_defined_terms_or_document_titles_for_organisations() {
    let text = "The Company shall pay. The Bank may refuse. Insurance Company records. PROOF OF \
                SERVICE. Certificate of Service. Deed of Trust.";
    assert!(texts_of(text, Org).is_empty(), "found {:?}", found(text));
}

#[test]
fn finds_government_and_municipal_bodies() {
    let text = "the Securities and Exchange Commission, the U.S. Department of Labor, the City of \
                Alder Bay and Daniel Kessler, the Office of the City Attorney, City of Alder Bay";
    assert_eq!(
        texts_of(text, Org),
        [
            "Securities and Exchange Commission",
            "U.S. Department of Labor",
            "City of Alder Bay",
            "Office of the City Attorney, City of Alder Bay",
        ]
    );
}

// ---------------------------------------------------------------------------------------
// PERSON
// ---------------------------------------------------------------------------------------

#[test]
fn finds_names_after_honorifics_and_roles_without_the_title() {
    let text = "Mr. Smith met Hon. William H. Alsup, Judge Chhabria, Plaintiff Jane Doe and \
                Magistrate Judge Rebecca Antonelli.";
    assert_eq!(
        texts_of(text, Person),
        [
            "Smith",
            "William H. Alsup",
            "Chhabria",
            "Jane Doe",
            "Rebecca Antonelli"
        ]
    );
    assert!(mention(text, Person, "Smith").confidence >= 0.8);
}

#[test]
fn finds_transcript_speakers() {
    let text = "MR. LINDQVIST: Objection.\nBY MS. PARK:\nQ. You can answer.";
    assert_eq!(texts_of(text, Person), ["LINDQVIST", "PARK"]);
}

#[test]
fn finds_signature_block_names_and_names_before_esq() {
    let text = "By: /s/ Jane Roe\n/s/ John Smith\nName: Sofia Brennan, Chief Executive Officer\n\
                Robert T. Jones, Esq.";
    assert_eq!(
        texts_of(text, Person),
        ["Jane Roe", "John Smith", "Sofia Brennan", "Robert T. Jones"]
    );
}

#[test]
fn finds_caption_parties_and_deponents_in_capitals() {
    let text = "MARIA DELGADO, Plaintiff,\nv.\nJANE ROE, an individual,\n\nDEPOSITION OF JOSÉ RAMÍREZ\n\
                JUDITH S. THORNTON\nUnited States District Judge";
    assert_eq!(
        texts_of(text, Person),
        [
            "MARIA DELGADO",
            "JANE ROE",
            "JOSÉ RAMÍREZ",
            "JUDITH S. THORNTON"
        ]
    );
}

#[test]
fn finds_capitalised_full_names_with_a_low_confidence() {
    let text = "Her supervisor, John A. Smith, told Maria Delgado's lawyer that Thomas Whitaker \
                and Kevin Thompson, Jr. had filmed it.";
    assert_eq!(
        texts_of(text, Person),
        [
            "John A. Smith",
            "Maria Delgado",
            "Thomas Whitaker",
            "Kevin Thompson, Jr."
        ]
    );
    assert!(mention(text, Person, "Maria Delgado").confidence < 0.7);
}

#[test]
fn does_not_take_one_word_after_a_party_role_for_a_person() {
    let text = "Defendant Globex denies the allegations. Plaintiff Jane Roe disagrees.";
    assert_eq!(texts_of(text, Person), ["Jane Roe"]);
}

#[test]
fn takes_a_caption_in_running_text_as_one_case_name_not_its_parties() {
    // Since rules-3 a caption is a CASE_NAME; the parties inside it are not reported a
    // second time as PERSON or ORG (overlapping mentions keep the longest).
    let text = "In Jane Roe v. John Smith the court ruled; in Tran v. \
                Pacific Coast Freight Lines, Inc. it did not, and Pacific Coast trucks kept going.";
    assert_eq!(
        texts_of(text, CaseName),
        [
            "Jane Roe v. John Smith",
            "Tran v. Pacific Coast Freight Lines, Inc."
        ]
    );
    assert!(texts_of(text, Person).is_empty(), "{:?}", found(text));
}

#[test]
fn trusts_a_bare_name_once_a_cue_has_named_that_person() {
    let text = "Ms. Okafor signed. Later, Hannelore Okafor called.";
    assert_eq!(texts_of(text, Person), ["Okafor", "Hannelore Okafor"]);
}

#[test]
fn does_not_take_title_case_headings_or_terms_for_people() {
    let text = "FIRST CLAIM\nUnreasonable Seizure and Excessive Force\nSecurity Deposit. Common Area \
                Charges. Mutual Nondisclosure Agreement. Effective Date. United States Constitution. \
                Confidential Information. Late Charge. Right to Repair.";
    assert!(texts_of(text, Person).is_empty(), "found {:?}", found(text));
}

#[test]
fn finds_no_person_inside_an_organisation_or_court() {
    let text = "Jones Day LLP and Maria Delgado Foundation appeared before the Ninth Circuit Court of \
                Appeals.";
    assert!(texts_of(text, Person).is_empty(), "found {:?}", found(text));
}

// ---------------------------------------------------------------------------------------
// LOCATION
// ---------------------------------------------------------------------------------------

#[test]
fn finds_a_street_address_with_suite_city_state_and_zip_as_one_mention() {
    let text =
        "Offices at 1200 Market Street, Suite 400, San Francisco, CA 94103 (the \"Office\").";
    assert_eq!(
        texts_of(text, Address),
        ["1200 Market Street, Suite 400, San Francisco, CA 94103"]
    );
}

#[test]
fn takes_a_town_after_an_address_only_when_it_is_a_place() {
    let text = "Re: Defective roof at 52 Oak Hollow Court, Folsom - Demand for Payment. Served at \
                100 Main Street, Plaintiff alleges, and at 7 Elm Road, Jane Roe says.";
    assert_eq!(
        texts_of(text, Address),
        [
            "52 Oak Hollow Court, Folsom",
            "100 Main Street",
            "7 Elm Road"
        ]
    );
}

#[test]
fn does_not_take_a_role_before_a_state_code_for_a_city() {
    let text = "Signed by the Plaintiff, CA resident, and the Company, NY office.";
    assert!(
        texts_of(text, Location).is_empty(),
        "found {:?}",
        found(text)
    );
}

#[test]
fn finds_city_state_pairs_counties_and_states() {
    let text = "She moved from Austin, Texas to Palo Alto, CA 94301 in San Mateo County; the County \
                of Cook and the State of California disagree; Commonwealth of Massachusetts law.";
    assert_eq!(
        texts_of(text, Location),
        [
            "Austin, Texas",
            "Palo Alto, CA 94301",
            "San Mateo County",
            "County of Cook",
            "State of California",
            "Commonwealth of Massachusetts",
        ]
    );
}

#[test]
fn finds_states_and_major_cities_from_the_built_in_list() {
    let text = "A Delaware corporation based in Chicago with offices in New York.";
    assert_eq!(
        texts_of(text, Location),
        ["Delaware", "Chicago", "New York"]
    );
}

#[test]
fn learns_the_cities_a_document_names() {
    let text = "CITY OF ALDER BAY, Defendant.\nA. 421 Calder Street in Alder Bay. I live there.";
    assert_eq!(texts_of(text, Address), ["421 Calder Street"]);
    assert_eq!(texts_of(text, Location), ["Alder Bay"]);
}

#[test]
fn leaves_a_place_that_starts_a_personal_name_to_the_name() {
    let text = "Virginia Okafor lives in Virginia.";
    assert_eq!(
        found(text),
        [
            (Person, "Virginia Okafor".into()),
            (Location, "Virginia".into())
        ]
    );
}

// ---------------------------------------------------------------------------------------
// Offsets, order, overlaps, determinism, size
// ---------------------------------------------------------------------------------------

#[test]
fn offsets_are_character_offsets_after_multibyte_text() {
    let text =
        "§ 2 — café Ramírez: under 42 U.S.C. § 1983 — Ms. Delgado paid €10,000 on March 4, 2024.";
    let statute = mention(text, Statute, "42 U.S.C. § 1983");
    assert_eq!(
        statute.start,
        text[..text.find("42 U.S.C.").unwrap()].chars().count()
    );
    assert_eq!(
        statute.end,
        statute.start + "42 U.S.C. § 1983".chars().count()
    );
    let money = mention(text, Money, "€10,000");
    assert_eq!(money.start, text[..text.find('€').unwrap()].chars().count());
    let date = mention(text, Date, "March 4, 2024");
    assert_eq!(date.end, text.chars().count() - 1);
}

#[test]
fn converts_byte_offsets_to_char_offsets_in_any_order() {
    let text = "§ café — “quoted” text";
    let mut offsets = super::offsets::CharOffsets::new(text);
    let expected: Vec<(usize, usize)> = text
        .char_indices()
        .enumerate()
        .map(|(ci, (bi, _))| (bi, ci))
        .collect();
    for &(byte, chars) in expected.iter().chain(expected.iter().rev()) {
        assert_eq!(offsets.char_at(byte), chars, "byte {byte}");
    }
    assert_eq!(offsets.char_at(text.len()), text.chars().count());
}

#[test]
fn keeps_the_longest_and_most_specific_mention_where_rules_overlap() {
    let text = "Maria Delgado v. Acme Corp., 550 U.S. 544 (2007), in San Francisco Superior Court, \
                Case No. 3:24-cv-01234-JST.";
    assert_eq!(
        found(text),
        [
            (
                Citation,
                "Maria Delgado v. Acme Corp., 550 U.S. 544 (2007)".into()
            ),
            (Court, "San Francisco Superior Court".into()),
            (CaseNumber, "3:24-cv-01234-JST".into()),
        ]
    );
}

#[test]
fn returns_nothing_for_empty_or_plain_text() {
    assert!(extract("").is_empty());
    assert!(extract("the quick brown fox jumps over the lazy dog").is_empty());
}

#[test]
fn output_is_deterministic() {
    let text = legal_text();
    let first = RuleExtractor::new().extract(&text);
    for _ in 0..3 {
        assert_eq!(RuleExtractor::new().extract(&text), first);
    }
}

#[test]
fn processes_a_100_kb_document_and_adversarial_inputs() {
    // No timing assertion (tests assert behaviour): this guards against catastrophic
    // patterns, which would make the test hang rather than fail.
    let base = legal_text();
    let big: String = base.repeat(100_000 / base.len() + 1);
    let mentions = extract(&big);
    assert!(mentions.len() > 100);

    for unit in [
        "Aaaa Bbbb ",
        "1 2 3 4 ",
        "§ ",
        "Acme LLC and ",
        "A. B. C. ",
        "$1,000,",
        "é ",
    ] {
        let adversarial = unit.repeat(100_000 / unit.len());
        let _ = extract(&adversarial);
    }
}

/// A paragraph of everything, for the size and determinism tests.
fn legal_text() -> String {
    "UNITED STATES DISTRICT COURT\nNORTHERN DISTRICT OF CALIFORNIA\n\nMARIA DELGADO, Plaintiff,\n\
     v.\nCITY OF ALDER BAY, et al., Defendants.\nCase No. 3:24-cv-01234-JST\n\n\
     Plaintiff Maria Delgado, of 418 Calder Street, Alder Bay, California, sues under \
     42 U.S.C. § 1983 and Cal. Civ. Code § 1542 for $250,000. On March 4, 2024, Officer Daniel \
     Kessler arrested her. Contact Elena Park at Park & Whitfield LLP, (415) 555-0142, \
     epark@parkwhitfield.test. See Monell v. Department of Social Services, 436 U.S. 658 (1978) — \
     café § 2.\n\n"
        .to_string()
}

// ---------------------------------------------------------------------------------------
// Shapes of real court filings (rules-3)
// ---------------------------------------------------------------------------------------

#[test]
fn case_numbers_with_an_en_dash_a_letter_prefix_a_case_colon_or_initials_are_found() {
    let text = "No. 12–345. Case No. XY104455. Docket No. 2019-02-0101. Appellate Case: 21-800 \
                No. C 10-01234 XYZ and MDL No. 2741.";
    let numbers = texts_of(text, CaseNumber);
    for want in [
        "12–345",
        "XY104455",
        "2019-02-0101",
        "21-800",
        "C 10-01234 XYZ",
        "2741",
    ] {
        assert!(
            numbers.contains(&want.to_string()),
            "{want} not in {numbers:?}"
        );
    }
}

#[test]
fn a_list_of_case_numbers_after_a_plural_label_is_every_number() {
    let numbers = texts_of("See Case Nos. 20-55436,\n20-55662 pending.", CaseNumber);
    assert_eq!(numbers, ["20-55436", "20-55662"]);
}

#[test]
fn a_bare_no_before_a_small_count_is_not_a_case_number() {
    assert!(texts_of("Interrogatory No. 3 asks for 12 documents.", CaseNumber).is_empty());
}

#[test]
fn reporter_citations_with_pin_cites_and_years_are_citations() {
    let text = "See 123 U. S. 456, 460; 210 N.C. App. 5 (2011); 5 F.4th 123 (9th Cir. 2021); \
                2023 WL 128600 (1st Cir. Jan. 9, 2023).";
    let cites = texts_of(text, Citation);
    for want in [
        "123 U. S. 456, 460",
        "210 N.C. App. 5 (2011)",
        "5 F.4th 123 (9th Cir. 2021)",
        "2023 WL 128600 (1st Cir. Jan. 9, 2023)",
    ] {
        assert!(cites.contains(&want.to_string()), "{want} not in {cites:?}");
    }
}

#[test]
fn a_case_name_before_a_reporter_citation_is_part_of_the_citation() {
    let cites = texts_of(
        "under Alasaad v. Mayorkas, 988 F.3d 8, 18-21 (1st Cir. 2021). Qin, 2023 WL 128600, at *2.",
        Citation,
    );
    assert_eq!(
        cites,
        [
            "Alasaad v. Mayorkas, 988 F.3d 8, 18-21 (1st Cir. 2021)",
            "Qin, 2023 WL 128600, at *2"
        ]
    );
}

#[test]
fn numbers_that_are_not_reporter_citations_are_not_citations() {
    assert!(texts_of("Suite 400, 12 U.S. dollars, 3 F. Smith", Citation).is_empty());
}

#[test]
fn case_names_stand_alone_and_stop_before_a_docket_label() {
    let text = "Re: United States v. Haitao Xiang, No. 22-1801\nIn re: RICHARD P. LIEBOWITZ No. 21-800\n\
                RE: Christopher Mielo, et al v. Steak N Shake Operations Inc\nCase Number: 17-2678";
    let names = texts_of(text, CaseName);
    assert_eq!(
        names,
        [
            "United States v. Haitao Xiang",
            "In re: RICHARD P. LIEBOWITZ",
            "Christopher Mielo, et al v. Steak N Shake Operations Inc"
        ]
    );
}

#[test]
fn a_sentence_without_a_versus_has_no_case_name() {
    assert!(texts_of("The Court in Smith held that Jones was right.", CaseName).is_empty());
}

#[test]
fn circuit_and_numbered_rules_and_dotted_codes_are_statutes() {
    let text = "Pursuant to 5th Circuit Rule 47.5.4, 3d Cir. L.A.R. 113, Federal Circuit Rule 47.3, \
                Rule 12.345, Rule 30.01(c), X.Y.Z. § 1A-23 and Fed.R.App.P 4(a)(4).";
    let statutes = texts_of(text, Statute);
    for want in [
        "5th Circuit Rule 47.5.4",
        "3d Cir. L.A.R. 113",
        "Federal Circuit Rule 47.3",
        "Rule 12.345",
        "Rule 30.01(c)",
        "X.Y.Z. § 1A-23",
        "Fed.R.App.P 4(a)(4)",
    ] {
        assert!(
            statutes.contains(&want.to_string()),
            "{want} not in {statutes:?}"
        );
    }
    assert!(texts_of("Rule 5 applies.", Statute).is_empty());
}

#[test]
fn a_circuit_followed_by_rules_or_bar_is_not_a_court() {
    assert!(
        texts_of(
            "The Plan is Addendum III to the Tenth Circuit Rules.",
            Court
        )
        .is_empty()
    );
    assert_eq!(texts_of("the First Circuit held", Court), ["First Circuit"]);
}

#[test]
fn street_addresses_over_several_lines_are_one_address() {
    let text = "Ms. Maia Fisher\n200 Constitution Avenue, N.W.\nSuite N-2119\nWashington, DC 20210\n\n\
                111 South 10th Street, Room 24.329\nSt. Louis, MO 63102\n\n601 MARKET STREET\nPHILADELPHIA, PA 19106-1790";
    let addresses = texts_of(text, Address);
    assert_eq!(
        addresses,
        [
            "200 Constitution Avenue, N.W.\nSuite N-2119\nWashington, DC 20210",
            "111 South 10th Street, Room 24.329\nSt. Louis, MO 63102",
            "601 MARKET STREET\nPHILADELPHIA, PA 19106-1790"
        ]
    );
}

#[test]
fn a_number_before_a_courthouse_is_not_an_address() {
    assert!(texts_of("21400 UNITED STATES COURTHOUSE", Address).is_empty());
}

#[test]
fn judges_on_a_panel_line_are_people() {
    let people = texts_of(
        "Before Barksdale, Stewart, and Dennis, Circuit Judges.",
        Person,
    );
    assert_eq!(people, ["Barksdale", "Stewart", "Dennis"]);
}

#[test]
fn capitalised_names_in_captions_and_counsel_blocks_are_people() {
    let text = "MARCIA M. WALDRON\n\nSEAN RIORDAN\nsriordan@aclunc.org\n\n\
                DAVID JENNINGS, et al.\n   Defendants-Appellants.\n\nBy: s/Caitlyn\n";
    let people = texts_of(text, Person);
    for want in [
        "MARCIA M. WALDRON",
        "SEAN RIORDAN",
        "DAVID JENNINGS",
        "Caitlyn",
    ] {
        assert!(
            people.contains(&want.to_string()),
            "{want} not in {people:?}"
        );
    }
}

#[test]
fn the_court_alone_is_no_entity() {
    assert!(found("The Court finds that the Court has jurisdiction.").is_empty());
}

// ---------------------------------------------------------------------------------------
// rules-4: organisations from the layout of address blocks, and the name shapes of real
// court filings (the corpus in tests/corpus shows each; the texts here are made up).
// ---------------------------------------------------------------------------------------

#[test]
fn a_firm_between_an_attorney_and_a_street_address_is_an_organisation() {
    let text = "Mr. Walter P. Quill\nHarrow Mendel Pike & Stone\n410 W. Oak Street\nSuite 300\nDayton, OH 45402\n";
    assert!(texts_of(text, Org).contains(&"Harrow Mendel Pike & Stone".to_string()));
}

#[test]
fn upper_case_lines_under_an_email_and_over_an_address_are_one_organisation() {
    let text = "JANE Q. ROE\njroe@example.org\nCENTER FOR TENANT\nJUSTICE OF\nWESTERN OREGON\n12 Pine Street\nPortland, OR 97201\n";
    let orgs = texts_of(text, Org);
    assert!(
        orgs.contains(&"CENTER FOR TENANT\nJUSTICE OF\nWESTERN OREGON".to_string()),
        "{orgs:?}"
    );
    assert_eq!(
        normalized(text, Org, "CENTER FOR TENANT\nJUSTICE OF\nWESTERN OREGON"),
        "CENTER FOR TENANT JUSTICE OF WESTERN OREGON"
    );
}

#[test]
fn an_organisation_line_may_end_where_the_street_number_starts() {
    let text = "ana@example.org\nLEGAL AID SOCIETY OF\nNORTHERN OHIO 1223\nWest Sixth Street\nCleveland, OH 44113\n";
    assert!(texts_of(text, Org).contains(&"LEGAL AID SOCIETY OF\nNORTHERN OHIO".to_string()));
}

#[test]
fn a_lone_title_case_line_over_an_address_is_not_taken_without_a_person_above() {
    // A recipient's own name line looks the same: without a person's line above it,
    // nothing says it is an organisation.
    let text = "Re: your letter\n\nWinston Abernathy\n22 Elm Road\nSalem, OR 97301\n";
    assert!(texts_of(text, Org).is_empty(), "{:?}", found(text));
}

#[test]
fn two_upper_case_words_over_an_address_are_a_person_not_an_organisation() {
    let text = "Dear counsel\n\nDANA PRICE\n22 Elm Road\nSalem, OR 97301\n";
    assert!(texts_of(text, Org).is_empty(), "{:?}", found(text));
}

#[test]
fn a_name_ending_a_line_on_a_dangling_word_continues_on_the_next_line() {
    let text = "v.\n\nJOHN DOE; DIRECTOR, OFFICE OF VETERANS'\nBENEFIT APPEALS; U.S. DEPARTMENT OF DEFENSE\n";
    assert!(
        texts_of(text, Org).contains(&"OFFICE OF VETERANS'\nBENEFIT APPEALS".to_string()),
        "{:?}",
        found(text)
    );
}

#[test]
fn a_generational_suffix_keeps_its_dot() {
    let text = "cc:  Harold T. Beamish Jr.\n  Other Person\n";
    assert!(texts_of(text, Person).contains(&"Harold T. Beamish Jr.".to_string()));
}

#[test]
fn an_initial_before_a_given_name_belongs_to_the_name() {
    let text = "cc:  T. Gregory Hammond\n";
    assert_eq!(texts_of(text, Person), vec!["T. Gregory Hammond"]);
}

#[test]
fn transcript_question_and_answer_marks_are_not_initials() {
    let text = "Q. Did you see it?\nA. Tom Whitaker was there.\n";
    assert_eq!(texts_of(text, Person), vec!["Tom Whitaker"]);
}

#[test]
fn a_surname_with_saint_is_one_name() {
    let text = "No. 21-50123\n\nMarguerite St. Clair,\n  Plaintiff—Appellant,\n  versus\n";
    assert!(texts_of(text, Person).contains(&"Marguerite St. Clair".to_string()));
}

#[test]
fn the_person_a_party_survives_is_a_person() {
    let text = "ROSA KLEIN, survivor of Martin Klein; DIRECTOR, OFFICE OF PROGRAMS\n";
    let people = texts_of(text, Person);
    assert!(people.contains(&"ROSA KLEIN".to_string()), "{people:?}");
    assert!(people.contains(&"Martin Klein".to_string()), "{people:?}");
}

#[test]
fn an_upper_case_party_et_al_is_a_person_only_with_a_given_name() {
    // (No role line below: that is another rule's cue.)
    let people = texts_of("GEORGE HALVERSEN, et al.,\n", Person);
    assert_eq!(people, vec!["GEORGE HALVERSEN"]);
    let none = texts_of("NORTHWIND FREIGHT, et al.,\n", Person);
    assert!(none.is_empty(), "{none:?}");
}

#[test]
fn a_building_named_after_a_person_is_not_a_person() {
    let text = "Clerk of Court\nHarriet P. Lowell Courthouse\n";
    assert!(
        !texts_of(text, Person).iter().any(|p| p.contains("Lowell")),
        "{:?}",
        found(text)
    );
}
