"""Configs as the install checks run them: vrld --check judges state
directories as start-up does, and /var/lib/vrl is not on a build machine."""
import pathlib


def with_state_dirs(text, tmp):
    """The config @text with its state directories (/var/lib/vrl) moved into
    @tmp, made as vrld wants them (mode 0700), so --check judges the rest."""
    state = pathlib.Path(tmp) / "state"
    state.mkdir(mode=0o700, exist_ok=True)
    return text.replace("/var/lib/vrl", str(state))
