-- Three more entity kinds the rule extractor reports (rules-3): CITATION (reporter
-- citations of decisions), CASE_NAME (`X v. Y`, `In re X`) and ADDRESS (postal addresses,
-- which were LOCATION before). The CHECK constraints name every kind, so they are replaced.

ALTER TABLE canonical_entities DROP CONSTRAINT canonical_entities_kind_known;
ALTER TABLE canonical_entities ADD CONSTRAINT canonical_entities_kind_known CHECK (kind IN
    ('PERSON', 'ORG', 'LOCATION', 'DATE', 'MONEY', 'COURT', 'CASE_NUMBER', 'STATUTE', 'EMAIL',
     'PHONE', 'CITATION', 'CASE_NAME', 'ADDRESS'));

ALTER TABLE entity_mentions DROP CONSTRAINT entity_mentions_kind_known;
ALTER TABLE entity_mentions ADD CONSTRAINT entity_mentions_kind_known CHECK (kind IN
    ('PERSON', 'ORG', 'LOCATION', 'DATE', 'MONEY', 'COURT', 'CASE_NUMBER', 'STATUTE', 'EMAIL',
     'PHONE', 'CITATION', 'CASE_NAME', 'ADDRESS'));
