"""Engines past one machine: PyTorch (:mod:`.torch`, extra ``torch``) and Ray Data (:mod:`.ray`,
extra ``ray``). Each module imports its engine at import time, so import them only when used."""
