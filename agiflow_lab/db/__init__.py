from agiflow_lab.db.database import Database

__all__ = ["Database"]
