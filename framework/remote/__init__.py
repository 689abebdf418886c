"""Reaching hosts: non-interactive commands and interactive PTY shells."""

from framework.remote.session import CommandResult, LocalSession, Session, SSHSession
from framework.remote.shell import InteractiveShell

__all__ = ["CommandResult", "InteractiveShell", "LocalSession", "SSHSession", "Session"]
