"""The site the uploads benchmark drives: one form through the widget, one plain form post."""
