"""What the database backends share: the store file and client registry (``common.py``) and ``DbStore``, the
database-independent half of each backend's store (``store.py``). A database backend is one sub-package of
``hotswap.store`` with a ``DbStore`` subclass and its ``BACKEND`` line."""
