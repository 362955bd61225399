"""Presentation mode: a full-screen playlist of public-safe scenes for walls and events.

`window.PresentationWindow` plays the configured scenes with cross-fades; `scenes` draws each
one from a `console.presentation.PublicView` (never from a frame); `hooks` opens it from the
main window's menu and adds the dead-man's switch and notifications there.
"""
