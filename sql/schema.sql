-- smtpguard database schema, version 3 (PRAGMA user_version = 3).
--
-- This file creates a new database. An older database is brought up to
-- date by the numbered scripts in migrations/ (NNN_what.sql upgrades
-- version NNN-1 to NNN), in one transaction; the daemon refuses a database
-- newer than itself. Both are embedded in the smtpguard binary.
--
-- Operators tune the policy tables (settings, ip_lists, domain_lists,
-- service_limits, the relay tables local_domains, local_addresses,
-- catchalls, relay_networks and mta_mailers, the DNS lists dnsbl_zones,
-- catalogue overrides) live,
-- with any SQLite client: the
-- daemon notices a change within 2 seconds (the triggers below bump
-- meta.policy_serial) or at once on SIGHUP. The state tables (bans,
-- rate_windows, domain_ip) are written by the daemon; deleting a row of
-- bans lifts that ban.

-- Serial numbers the daemon polls to notice changes made by others.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT INTO meta (key, value) VALUES ('policy_serial', 0), ('ban_serial', 0);

-- What each setting is: rewritten by the daemon from its built-in table at
-- every start. The checks on `settings` consult it.
CREATE TABLE setting_info (
    name          TEXT PRIMARY KEY,
    type          TEXT NOT NULL,     -- mode, integer, seconds, severity,
                                     -- boolean, choice, text
    default_value TEXT NOT NULL,
    min           INTEGER NOT NULL,
    max           INTEGER NOT NULL,
    description   TEXT NOT NULL,
    choices       TEXT               -- choice: the names, '|'-separated
);

-- Settings: one row per setting, name as in setting_info (ASSP's names
-- where ASSP has one: maxSMTPSessions, maxSMTPipConnects, DoFrequencyIP...).
-- Modes: 0 off, 1 block, 2 monitor (log only), 3 score. Missing rows are
-- added with the default at start. A value the daemon cannot use is refused
-- here already where SQL can tell; otherwise the daemon logs
-- setting_invalid (00290004) and keeps the last good value.
CREATE TABLE settings (
    name    TEXT PRIMARY KEY,
    value   TEXT NOT NULL,
    comment TEXT,
    updated INTEGER NOT NULL DEFAULT (strftime('%s', 'now'))
);

CREATE TRIGGER settings_check_insert BEFORE INSERT ON settings
BEGIN
    SELECT RAISE(ABORT, 'smtpguard: unknown setting (table setting_info lists them)')
     WHERE NOT EXISTS (SELECT 1 FROM setting_info WHERE name = NEW.name);
    SELECT RAISE(ABORT, 'smtpguard: value not a whole number within min..max of setting_info')
      FROM setting_info i
     WHERE i.name = NEW.name AND i.type IN ('mode', 'integer')
       AND (NEW.value = '' OR NEW.value GLOB '*[^0-9]*'
            OR length(NEW.value) > 12
            OR CAST(NEW.value AS INTEGER) NOT BETWEEN i.min AND i.max);
    SELECT RAISE(ABORT, 'smtpguard: value not a number of seconds (optionally with s, m, h or d)')
      FROM setting_info i
     WHERE i.name = NEW.name AND i.type = 'seconds'
       AND NOT (NEW.value GLOB '[0-9]*'
                AND (NEW.value NOT GLOB '*[^0-9]*'
                     OR (substr(NEW.value, 1, length(NEW.value) - 1) NOT GLOB '*[^0-9]*'
                         AND substr(NEW.value, -1) IN ('s', 'm', 'h', 'd'))));
    SELECT RAISE(ABORT, 'smtpguard: value not a severity (emergency .. debug, or 0-7)')
      FROM setting_info i
     WHERE i.name = NEW.name AND i.type = 'severity'
       AND lower(NEW.value) NOT IN ('emergency', 'alert', 'critical', 'crit',
            'error', 'err', 'warning', 'notice', 'info', 'debug',
            '0', '1', '2', '3', '4', '5', '6', '7');
    SELECT RAISE(ABORT, 'smtpguard: value not a boolean (yes/no, on/off, true/false, 1/0)')
      FROM setting_info i
     WHERE i.name = NEW.name AND i.type = 'boolean'
       AND lower(NEW.value) NOT IN ('0', '1', 'yes', 'no', 'on', 'off',
            'true', 'false');
    SELECT RAISE(ABORT, 'smtpguard: value not one of the choices listed in setting_info')
      FROM setting_info i
     WHERE i.name = NEW.name AND i.type = 'choice'
       AND (NEW.value GLOB '*|*' OR NEW.value = ''
            OR instr('|' || i.choices || '|', '|' || lower(NEW.value) || '|') = 0);
END;

CREATE TRIGGER settings_check_update BEFORE UPDATE ON settings
BEGIN
    SELECT RAISE(ABORT, 'smtpguard: unknown setting (table setting_info lists them)')
     WHERE NOT EXISTS (SELECT 1 FROM setting_info WHERE name = NEW.name);
    SELECT RAISE(ABORT, 'smtpguard: value not a whole number within min..max of setting_info')
      FROM setting_info i
     WHERE i.name = NEW.name AND i.type IN ('mode', 'integer')
       AND (NEW.value = '' OR NEW.value GLOB '*[^0-9]*'
            OR length(NEW.value) > 12
            OR CAST(NEW.value AS INTEGER) NOT BETWEEN i.min AND i.max);
    SELECT RAISE(ABORT, 'smtpguard: value not a number of seconds (optionally with s, m, h or d)')
      FROM setting_info i
     WHERE i.name = NEW.name AND i.type = 'seconds'
       AND NOT (NEW.value GLOB '[0-9]*'
                AND (NEW.value NOT GLOB '*[^0-9]*'
                     OR (substr(NEW.value, 1, length(NEW.value) - 1) NOT GLOB '*[^0-9]*'
                         AND substr(NEW.value, -1) IN ('s', 'm', 'h', 'd'))));
    SELECT RAISE(ABORT, 'smtpguard: value not a severity (emergency .. debug, or 0-7)')
      FROM setting_info i
     WHERE i.name = NEW.name AND i.type = 'severity'
       AND lower(NEW.value) NOT IN ('emergency', 'alert', 'critical', 'crit',
            'error', 'err', 'warning', 'notice', 'info', 'debug',
            '0', '1', '2', '3', '4', '5', '6', '7');
    SELECT RAISE(ABORT, 'smtpguard: value not a boolean (yes/no, on/off, true/false, 1/0)')
      FROM setting_info i
     WHERE i.name = NEW.name AND i.type = 'boolean'
       AND lower(NEW.value) NOT IN ('0', '1', 'yes', 'no', 'on', 'off',
            'true', 'false');
    SELECT RAISE(ABORT, 'smtpguard: value not one of the choices listed in setting_info')
      FROM setting_info i
     WHERE i.name = NEW.name AND i.type = 'choice'
       AND (NEW.value GLOB '*|*' OR NEW.value = ''
            OR instr('|' || i.choices || '|', '|' || lower(NEW.value) || '|') = 0);
END;

-- Address lists, by ASSP's names:
--   denySMTPConnectionsFromAlways  strict deny list, refused at connect
--                                  (DoDenyConnect), checked before exemptions
--   noProcessingIPs                no processing: local submission, own hosts
--   whiteListedIPs                 allow-listed clients
--   ispip                          ISP relays and secondary MX hosts
-- A client on any of the three exemption lists skips the session limits,
-- the mail, recipient and harvest limits, and the DNS and SPF checks
-- (client_exempt, 00200161). The relay decision still applies to it: list
-- a network in relay_networks to let it relay.
-- network: an IPv4 or IPv6 address or CIDR network, host bits zero
-- (192.0.2.0/24, 2001:db8::/32). Malformed rows are ignored and logged
-- (list_entry_invalid, 00290005).
CREATE TABLE ip_lists (
    list    TEXT NOT NULL CHECK (list IN ('denySMTPConnectionsFromAlways',
                'noProcessingIPs', 'whiteListedIPs', 'ispip')),
    network TEXT NOT NULL,
    comment TEXT,
    created INTEGER NOT NULL DEFAULT (strftime('%s', 'now')),
    PRIMARY KEY (list, network)
);

-- Domain lists. maxSMTPdomainIPWL: sender domains (and their subdomains)
-- exempt from the limit of client subnets per domain.
CREATE TABLE domain_lists (
    list    TEXT NOT NULL CHECK (list IN ('maxSMTPdomainIPWL')),
    domain  TEXT NOT NULL COLLATE NOCASE,
    comment TEXT,
    created INTEGER NOT NULL DEFAULT (strftime('%s', 'now')),
    PRIMARY KEY (list, domain)
);

-- Concurrent session limit per listening service, by the MTA's
-- {daemon_name} macro (Postfix: milter_macro_daemon_name, set per service
-- in master.cf with -o; Sendmail: the Name= of DaemonPortOptions).
-- Services without a row use maxSMTPServiceSessions. 0 = no limit.
CREATE TABLE service_limits (
    service      TEXT PRIMARY KEY,
    max_sessions INTEGER NOT NULL CHECK (max_sessions >= 0),
    comment      TEXT
);

-- ---- Relay authorization (checked at RCPT TO for every recipient) ----
--
-- A recipient is local (delivered here) when its domain is in
-- local_domains; then it must be in local_addresses (user+tag@ matches
-- user@), be postmaster, or have a catch-all, else it is refused as
-- unknown (550 5.1.1). While local_addresses is empty, every recipient of
-- a local domain is accepted: the MTA knows its mailboxes. While
-- local_domains is empty, the MTA's own routing decides: see mta_mailers.
-- A recipient that is not local is relayed when relayPolicy allows it:
-- authenticated (relayAuthenticated), client in relay_networks, or sender
-- in local_addresses (relayLocalSender, off: weak). See docs/settings.md.

-- Local domains: exact names, no trailing dot; IDNs in their xn-- form.
CREATE TABLE local_domains (
    domain  TEXT PRIMARY KEY COLLATE NOCASE,
    comment TEXT,
    created INTEGER NOT NULL DEFAULT (strftime('%s', 'now'))
);

-- The local address map: known mailboxes, 'local-part@domain'. Compared
-- case-insensitively; a quoted local part is compared by its content.
CREATE TABLE local_addresses (
    address TEXT PRIMARY KEY COLLATE NOCASE,
    comment TEXT,
    created INTEGER NOT NULL DEFAULT (strftime('%s', 'now'))
);

-- Catch-all mailbox of a local domain: unknown recipients of the domain
-- are accepted (the MTA must redirect them to mailbox, e.g. with a
-- Postfix virtual_alias_maps entry '@domain mailbox').
CREATE TABLE catchalls (
    domain  TEXT PRIMARY KEY COLLATE NOCASE,
    mailbox TEXT NOT NULL,
    comment TEXT,
    created INTEGER NOT NULL DEFAULT (strftime('%s', 'now'))
);

-- Client networks that may relay (IPv4/IPv6 address or CIDR, host bits
-- zero), like Postfix's mynetworks.
CREATE TABLE relay_networks (
    network TEXT PRIMARY KEY,
    comment TEXT,
    created INTEGER NOT NULL DEFAULT (strftime('%s', 'now'))
);

-- While local_domains is empty: the MTA's mailer (transport) for a
-- recipient ({rcpt_mailer}: Postfix's transport name, Sendmail's mailer)
-- tells what the MTA itself decided. 'remote' mailers need a relay
-- criterion; 'local' ones and mailers not listed are local delivery.
CREATE TABLE mta_mailers (
    mailer  TEXT PRIMARY KEY COLLATE NOCASE,
    class   TEXT NOT NULL CHECK (class IN ('local', 'remote')),
    comment TEXT
);

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

-- The event catalogue, rewritten from the built-in one at every start
-- (docs/log-reference.md documents each event). Operators may set
--   severity_override: emergency alert critical error warning notice info
--                      debug (the syslog priority the event is logged at)
--   action_override:   reject, tempfail, close, or monitor (log only),
--                      for events whose default action refuses something.
CREATE TABLE catalogue (
    id                TEXT PRIMARY KEY,
    name              TEXT NOT NULL,
    facility          TEXT NOT NULL,
    severity          TEXT NOT NULL,
    action            TEXT NOT NULL,
    message           TEXT NOT NULL,
    severity_override TEXT CHECK (severity_override IS NULL OR
        severity_override IN ('emergency', 'alert', 'critical', 'error',
                              'warning', 'notice', 'info', 'debug')),
    action_override   TEXT CHECK (action_override IS NULL OR
        action_override IN ('reject', 'tempfail', 'close', 'monitor'))
);

-- Bans: clients (kind 'ip', key = address or network key as logged) and
-- sender domains (kind 'domain'). reason = ID of the event that issued the
-- ban. Written at once when issued; expired rows are purged.
CREATE TABLE bans (
    kind    TEXT NOT NULL CHECK (kind IN ('ip', 'domain')),
    key     TEXT NOT NULL,
    reason  TEXT NOT NULL,
    created INTEGER NOT NULL,
    expires INTEGER NOT NULL,
    PRIMARY KEY (kind, key)
);
CREATE INDEX bans_expires ON bans (expires);

-- Counting windows, flushed from memory at least every flushInterval.
-- Fixed windows (Postfix anvil's arithmetic): count events from
-- window_start for window_seconds. key says what is counted:
--   conn:<client>               connections (maxSMTPipConnects)
--   mail:sender:<address>       accepted messages per minute, by envelope
--   mail:auth:<user>            sender, authenticated user or client
--   mail:ip:<client>            (maxEmailPerMinute*)
--   rcpt:sender|auth|ip:<...>   accepted recipients per minute
--                               (maxRcptPerMinute*)
--   harvest:<client>            unknown local recipients (maxHarvestUnknown)
-- <client> is the address, or its network as logged (IPv6 per /64).
CREATE TABLE rate_windows (
    key            TEXT PRIMARY KEY,
    window_start   INTEGER NOT NULL,
    window_seconds INTEGER NOT NULL,
    count          INTEGER NOT NULL
) WITHOUT ROWID;

-- Client subnets seen per sender domain (maxSMTPdomainIP).
CREATE TABLE domain_ip (
    domain    TEXT NOT NULL,
    subnet    TEXT NOT NULL,
    last_seen INTEGER NOT NULL,
    PRIMARY KEY (domain, subnet)
) WITHOUT ROWID;

-- Change tracking for the live reload.
CREATE TRIGGER settings_ai AFTER INSERT ON settings BEGIN
    UPDATE meta SET value = value + 1 WHERE key = 'policy_serial'; END;
CREATE TRIGGER settings_au AFTER UPDATE ON settings BEGIN
    UPDATE meta SET value = value + 1 WHERE key = 'policy_serial'; END;
CREATE TRIGGER settings_ad AFTER DELETE ON settings BEGIN
    UPDATE meta SET value = value + 1 WHERE key = 'policy_serial'; END;
CREATE TRIGGER ip_lists_ai AFTER INSERT ON ip_lists BEGIN
    UPDATE meta SET value = value + 1 WHERE key = 'policy_serial'; END;
CREATE TRIGGER ip_lists_au AFTER UPDATE ON ip_lists BEGIN
    UPDATE meta SET value = value + 1 WHERE key = 'policy_serial'; END;
CREATE TRIGGER ip_lists_ad AFTER DELETE ON ip_lists BEGIN
    UPDATE meta SET value = value + 1 WHERE key = 'policy_serial'; END;
CREATE TRIGGER domain_lists_ai AFTER INSERT ON domain_lists BEGIN
    UPDATE meta SET value = value + 1 WHERE key = 'policy_serial'; END;
CREATE TRIGGER domain_lists_au AFTER UPDATE ON domain_lists BEGIN
    UPDATE meta SET value = value + 1 WHERE key = 'policy_serial'; END;
CREATE TRIGGER domain_lists_ad AFTER DELETE ON domain_lists BEGIN
    UPDATE meta SET value = value + 1 WHERE key = 'policy_serial'; END;
CREATE TRIGGER service_limits_ai AFTER INSERT ON service_limits BEGIN
    UPDATE meta SET value = value + 1 WHERE key = 'policy_serial'; END;
CREATE TRIGGER service_limits_au AFTER UPDATE ON service_limits BEGIN
    UPDATE meta SET value = value + 1 WHERE key = 'policy_serial'; END;
CREATE TRIGGER service_limits_ad AFTER DELETE ON service_limits BEGIN
    UPDATE meta SET value = value + 1 WHERE key = 'policy_serial'; END;
CREATE TRIGGER local_domains_ai AFTER INSERT ON local_domains BEGIN
    UPDATE meta SET value = value + 1 WHERE key = 'policy_serial'; END;
CREATE TRIGGER local_domains_au AFTER UPDATE ON local_domains BEGIN
    UPDATE meta SET value = value + 1 WHERE key = 'policy_serial'; END;
CREATE TRIGGER local_domains_ad AFTER DELETE ON local_domains BEGIN
    UPDATE meta SET value = value + 1 WHERE key = 'policy_serial'; END;
CREATE TRIGGER local_addresses_ai AFTER INSERT ON local_addresses BEGIN
    UPDATE meta SET value = value + 1 WHERE key = 'policy_serial'; END;
CREATE TRIGGER local_addresses_au AFTER UPDATE ON local_addresses BEGIN
    UPDATE meta SET value = value + 1 WHERE key = 'policy_serial'; END;
CREATE TRIGGER local_addresses_ad AFTER DELETE ON local_addresses BEGIN
    UPDATE meta SET value = value + 1 WHERE key = 'policy_serial'; END;
CREATE TRIGGER catchalls_ai AFTER INSERT ON catchalls BEGIN
    UPDATE meta SET value = value + 1 WHERE key = 'policy_serial'; END;
CREATE TRIGGER catchalls_au AFTER UPDATE ON catchalls BEGIN
    UPDATE meta SET value = value + 1 WHERE key = 'policy_serial'; END;
CREATE TRIGGER catchalls_ad AFTER DELETE ON catchalls BEGIN
    UPDATE meta SET value = value + 1 WHERE key = 'policy_serial'; END;
CREATE TRIGGER relay_networks_ai AFTER INSERT ON relay_networks BEGIN
    UPDATE meta SET value = value + 1 WHERE key = 'policy_serial'; END;
CREATE TRIGGER relay_networks_au AFTER UPDATE ON relay_networks BEGIN
    UPDATE meta SET value = value + 1 WHERE key = 'policy_serial'; END;
CREATE TRIGGER relay_networks_ad AFTER DELETE ON relay_networks BEGIN
    UPDATE meta SET value = value + 1 WHERE key = 'policy_serial'; END;
CREATE TRIGGER mta_mailers_ai AFTER INSERT ON mta_mailers BEGIN
    UPDATE meta SET value = value + 1 WHERE key = 'policy_serial'; END;
CREATE TRIGGER mta_mailers_au AFTER UPDATE ON mta_mailers BEGIN
    UPDATE meta SET value = value + 1 WHERE key = 'policy_serial'; END;
CREATE TRIGGER mta_mailers_ad AFTER DELETE ON mta_mailers BEGIN
    UPDATE meta SET value = value + 1 WHERE key = 'policy_serial'; END;
CREATE TRIGGER dnsbl_zones_ai AFTER INSERT ON dnsbl_zones BEGIN
    UPDATE meta SET value = value + 1 WHERE key = 'policy_serial'; END;
CREATE TRIGGER dnsbl_zones_au AFTER UPDATE ON dnsbl_zones BEGIN
    UPDATE meta SET value = value + 1 WHERE key = 'policy_serial'; END;
CREATE TRIGGER dnsbl_zones_ad AFTER DELETE ON dnsbl_zones BEGIN
    UPDATE meta SET value = value + 1 WHERE key = 'policy_serial'; END;
CREATE TRIGGER catalogue_au AFTER UPDATE OF severity_override, action_override
    ON catalogue BEGIN
    UPDATE meta SET value = value + 1 WHERE key = 'policy_serial'; END;
CREATE TRIGGER bans_ai AFTER INSERT ON bans BEGIN
    UPDATE meta SET value = value + 1 WHERE key = 'ban_serial'; END;
CREATE TRIGGER bans_au AFTER UPDATE ON bans BEGIN
    UPDATE meta SET value = value + 1 WHERE key = 'ban_serial'; END;
CREATE TRIGGER bans_ad AFTER DELETE ON bans BEGIN
    UPDATE meta SET value = value + 1 WHERE key = 'ban_serial'; END;
