-- smtpguard policy for a submission server (port 587, SMTP AUTH): every
-- user authenticates; the limits are per user, to catch stolen passwords.
-- In master.cf the submission service carries
-- "-o milter_macro_daemon_name=submission" (contrib/postfix/master.cf).
--
--   sqlite3 /var/lib/smtpguard/smtpguard.db < submission.sql
BEGIN;

-- Per authenticated user: 60 messages and 300 recipients a minute.
UPDATE settings SET value = '60' WHERE name = 'maxEmailPerMinuteAuth';
UPDATE settings SET value = '300' WHERE name = 'maxRcptPerMinuteAuth';
UPDATE settings SET value = '1' WHERE name IN ('DoEmailRate',
    'DoRcptRate', 'relayAuthenticated');

-- Users roam: many networks send for the company's domain, so the
-- subnets-per-sender-domain limit does not suit a submission service.
UPDATE settings SET value = '0' WHERE name = 'DoDomainIP';

-- Sessions: 50 on the submission service, 5 per client.
INSERT OR REPLACE INTO service_limits (service, max_sessions) VALUES
    ('submission', 50);
UPDATE settings SET value = '5' WHERE name = 'maxSMTPipSessions';

-- A client that collects 5 refusals or unknown commands is closed.
UPDATE settings SET value = '5' WHERE name = 'MaxErrors';

-- Users are not checked against DNSBLs or SPF (smtpguard skips
-- authenticated clients anyway); keep SPF for unauthenticated attempts.
UPDATE settings SET value = '0' WHERE name = 'DoDNSBL';

COMMIT;
