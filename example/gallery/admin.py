"""The gallery in the admin."""

from django.contrib import admin

from gallery.models import Item

admin.site.register(Item, list_display=["title", "image", "attachment", "created"])
