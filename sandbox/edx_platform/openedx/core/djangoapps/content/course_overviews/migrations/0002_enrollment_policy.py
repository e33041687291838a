from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('course_overviews', '0001_initial'),
    ]

    operations = [
        migrations.AddField(
            model_name='courseoverview',
            name='invitation_only',
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name='courseoverview',
            name='max_student_enrollments_allowed',
            field=models.IntegerField(null=True),
        ),
    ]
