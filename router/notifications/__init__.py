"""What the router tells others about calls: CRM webhooks and text messages."""
