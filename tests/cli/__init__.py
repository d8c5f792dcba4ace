"""Entry points: the ``runledger`` command and its embedded servers."""
