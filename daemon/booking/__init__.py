"""Booking links: what a link offers (link_settings), when (availability), how a booking is
taken, moved and cancelled per access mode (service), and the invitations it mails
(invites, outbox)."""
