"""Stateful fakes of remote services that tests talk to over real HTTP on loopback.

`google_api.GoogleFake` stands in for the Google Calendar API v3 and Google's OAuth endpoints.
"""
