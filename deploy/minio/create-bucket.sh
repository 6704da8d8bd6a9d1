#!/bin/sh
# ImagePipe's storage in MinIO: the bucket, a policy that reaches that bucket alone, and the user
# the application signs in as, holding that policy. MinIO's root keys stay here and in MinIO:
# the application never has them. Every step may run again: the `storage-init` service runs at
# every `docker compose up`.
set -eu
mc alias set store http://minio:9000 "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" >/dev/null
mc mb --ignore-existing "store/$S3_BUCKET"
mc anonymous set none "store/$S3_BUCKET"
# Objects in the bucket read, written and deleted (multipart uploads included), the bucket listed;
# nothing of any other bucket, nothing of MinIO's administration.
cat >/tmp/imagepipe-bucket.json <<POLICY
{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Action": ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
      "Resource": ["arn:aws:s3:::$S3_BUCKET"]
    },
    {
      "Effect": "Allow",
      "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
      "Resource": ["arn:aws:s3:::$S3_BUCKET/*"]
    }
  ]
}
POLICY
mc admin policy create store imagepipe-bucket /tmp/imagepipe-bucket.json
mc admin user add store "$S3_ACCESS_KEY_ID" "$S3_SECRET_ACCESS_KEY"
# Attaching a policy already attached is an error to mc: attach only a missing one.
mc admin user info store "$S3_ACCESS_KEY_ID" | grep -q imagepipe-bucket \
    || mc admin policy attach store imagepipe-bucket --user "$S3_ACCESS_KEY_ID"
echo "storage-init: bucket $S3_BUCKET, reached by $S3_ACCESS_KEY_ID alone"
