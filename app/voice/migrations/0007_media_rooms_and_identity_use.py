"""Each claim of a room name gets a LiveKit room of its own (sessions.media_rooms), and
identity claims lapse when unused. Rows from before ran in the LiveKit room named like
their room, and their identities count as used now."""

import django.utils.timezone
from django.db import migrations, models


def same_name_rooms(apps, schema_editor):
    for model in ("VoiceSession", "RoomClaim"):
        apps.get_model("voice", model).objects.update(livekit_room=models.F("room"))


class Migration(migrations.Migration):

    dependencies = [
        ("voice", "0006_transcript_typed_latency"),
    ]

    operations = [
        migrations.AddField(
            model_name="voicesession",
            name="livekit_room",
            field=models.CharField(default="", max_length=160),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="roomclaim",
            name="livekit_room",
            field=models.CharField(default="", max_length=160),
            preserve_default=False,
        ),
        migrations.RunPython(same_name_rooms, migrations.RunPython.noop),
        migrations.AddField(
            model_name="identityclaim",
            name="last_used_at",
            field=models.DateTimeField(default=django.utils.timezone.now),
        ),
    ]
