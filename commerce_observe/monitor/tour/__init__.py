"""The guided tour behind ``./scripts/demo.sh``: every headline feature on the
embedded defaults, no server needed (``commerce-observe tour``)."""
