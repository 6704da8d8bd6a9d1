"""Who may log in: throttled passwords, locked-out logins and the API's tokens (the app ``logins``).

``throttle`` is the authentication backend every password login goes through; ``models`` holds a
username's failures from an address and the API tokens; ``tokens`` authenticates the API's
requests and serves ``/api/auth/token/``; ``admin`` lets staff unlock logins and revoke tokens.
"""
