-- 003: DNS reputation: the DNSBL/DNSWL zones table. The DNS and SPF
-- settings need no schema change (setting_info is rewritten at start; the
-- 'text' setting type needs no check in the settings triggers).

-- DNS blacklists and allow lists, asked for every client (DoDNSBL). The
-- weights of the zones that list a client add up; at dnsblThreshold or
-- more the client is refused (554 5.7.1, the zone and its TXT reason in
-- the reply); a positive sum below it goes to the penalty score. A
-- negative weight makes a zone an allow list (DNSWL). Like Postfix's
-- postscreen_dnsbl_sites 'zone=answers*weight':
--   zone     the list's DNS zone, e.g. 'dnsbl.example.net'
--   answers  which A answers count: '' any 127.0.0.0/8 address but
--            127.255.255.0/24 (what lists answer on errors); a
--            pattern whose octets are numbers or [lists] of numbers and
--            ranges, '127.0.0.[2..11;20]'; a network, '127.0.0.0/24'; or
--            a bitmask of the last octet, '&0x04' (any of its bits set).
--            Several, comma-separated, count if any matches.
--   txt      1: fetch the TXT record for the reason shown and logged.
--   ipv6     1: also ask for IPv6 clients (reversed nibbles); 0: IPv4 only.
CREATE TABLE dnsbl_zones (
    zone    TEXT PRIMARY KEY COLLATE NOCASE,
    weight  INTEGER NOT NULL DEFAULT 1
            CHECK (weight BETWEEN -1000000 AND 1000000 AND weight <> 0),
    answers TEXT NOT NULL DEFAULT '',
    txt     INTEGER NOT NULL DEFAULT 1 CHECK (txt IN (0, 1)),
    ipv6    INTEGER NOT NULL DEFAULT 1 CHECK (ipv6 IN (0, 1)),
    comment TEXT,
    created INTEGER NOT NULL DEFAULT (strftime('%s', 'now'))
);

CREATE TRIGGER dnsbl_zones_ai AFTER INSERT ON dnsbl_zones BEGIN
    UPDATE meta SET value = value + 1 WHERE key = 'policy_serial'; END;
CREATE TRIGGER dnsbl_zones_au AFTER UPDATE ON dnsbl_zones BEGIN
    UPDATE meta SET value = value + 1 WHERE key = 'policy_serial'; END;
CREATE TRIGGER dnsbl_zones_ad AFTER DELETE ON dnsbl_zones BEGIN
    UPDATE meta SET value = value + 1 WHERE key = 'policy_serial'; END;
