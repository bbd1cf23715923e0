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
