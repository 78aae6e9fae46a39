"""Modal dialogs: approval, order ticket, flatten, kill reset, quit, errors, strategies."""
