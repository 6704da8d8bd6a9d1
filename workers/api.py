from rest_framework import serializers, viewsets

from .models import Worker


class WorkerSerializer(serializers.ModelSerializer):
    status = serializers.CharField(read_only=True)

    class Meta:
        model = Worker
        fields = [
            "id",
            "host",
            "pid",
            "status",
            "first_seen",
            "last_seen",
            "tiles_done",
            "current_job",
            "partitions",
            "counters",
        ]


class WorkerViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Worker.objects.all()
    serializer_class = WorkerSerializer
