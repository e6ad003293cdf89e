"""Local stand-ins for the SaaS email APIs that cannot be reached from here (SendGrid,
Mailgun). They check requests as the real APIs do and can inject faults; SES uses moto."""
