from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create (or reset the password of) a demo user and print the login."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="demo")
        parser.add_argument("--password", default="demo-imagepipe")
        parser.add_argument("--staff", action="store_true", help="make the user staff + superuser")

    def handle(self, *args, username, password, staff, **options):
        user, created = get_user_model().objects.get_or_create(username=username)
        user.set_password(password)
        if staff:
            user.is_staff = user.is_superuser = True
        user.save()
        self.stdout.write(
            f"{'created' if created else 'updated'} user {username!r} with password {password!r}"
        )
