-- smtpguard default policies, applied once when a database is created.
-- Settings get their defaults from the daemon's built-in table (listed in
-- setting_info and docs/settings.md); this file holds the default list
-- entries.

-- Mail submitted on the host itself (sendmail(1) through Postfix's
-- non_smtpd_milters, local web applications) is not an SMTP client to
-- limit. Only the loopback host addresses, not all of 127.0.0.0/8.
INSERT INTO ip_lists (list, network, comment) VALUES
    ('noProcessingIPs', '127.0.0.1', 'local submission'),
    ('noProcessingIPs', '::1', 'local submission');

-- Relaying: the host itself may relay, like Postfix's default mynetworks.
INSERT INTO relay_networks (network, comment) VALUES
    ('127.0.0.0/8', 'loopback'),
    ('::1', 'loopback');

-- How the MTA's mailer reads while local_domains is empty. Postfix: local,
-- virtual, lmtp deliver here, relay serves relay_domains (a backup MX);
-- smtp goes out. Sendmail: local delivers here, esmtp/smtp/smtp8/dsmtp
-- go out; with a SMART_HOST Sendmail's relay mailer goes out too: set it
-- to remote there.
INSERT INTO mta_mailers (mailer, class, comment) VALUES
    ('local', 'local', 'Postfix, Sendmail: local delivery'),
    ('virtual', 'local', 'Postfix: virtual mailboxes'),
    ('lmtp', 'local', 'Postfix: LMTP to the mailbox server'),
    ('relay', 'local', 'Postfix: relay_domains; Sendmail: smart host'),
    ('smtp', 'remote', 'outbound'),
    ('esmtp', 'remote', 'Sendmail: outbound'),
    ('smtp8', 'remote', 'Sendmail: outbound'),
    ('dsmtp', 'remote', 'Sendmail: outbound');
