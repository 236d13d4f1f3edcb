-- Alert notifications sent per recipient (an e-mail recipient list, a webhook URL) and window, and how
-- many were held for the window's summary: a burst of alerts never floods a mailbox or an endpoint.
CREATE TABLE notification_budget (
    recipient TEXT NOT NULL,
    window_start {{real}} NOT NULL,
    sent INTEGER NOT NULL DEFAULT 0,
    held INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (recipient, window_start)
);
